rule toy:
    """The 2-D toy MAP experiment (paper §4): Table 1 beside ours, and Fig. 1."""
    input:
        code=toy_code,
    output:
        metrics="results/toy/metrics.csv",
        table=report("results/toy/table1.md", caption="../report/toy_table.rst", category="2-D toy",
                     labels={"file": "Table 1"}),
        figure=report("results/figures/toy.png", caption="../report/toy.rst", category="2-D toy",
                      labels={"file": "Fig. 1"}),
    params:
        settings=toy_settings,
    threads: resources("toy")[0]
    resources:
        **resources("toy")[1],
    conda:
        CONDA_ENV
    log:
        "results/logs/toy.log",
    benchmark:
        "results/benchmarks/toy.tsv"
    shell:
        "affsr toy --quiet --settings {params.settings:q} --out {output.metrics} "
        "--table {output.table} --figure {output.figure} > {log} 2>&1"
