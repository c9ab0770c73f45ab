rule toy:
    """The 2-D toy MAP experiment (paper §4): Table 1 beside ours, and Fig. 1."""
    input:
        code("toy", "train", "plots", "methods/base", "methods/pixel", "methods/gan", "methods/dae",
             "methods/denoiser_guided"),
    output:
        metrics="results/toy/metrics.csv",
        table="results/toy/table1.md",
        figure="results/figures/toy.png",
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
