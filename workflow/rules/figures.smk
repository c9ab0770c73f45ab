rule figures:
    """Sample grid and training curves per data set, and the metrics plot."""
    input:
        code("plots"),
        metrics="results/metrics.csv",
        samples=expand("results/samples/{dataset}/{method}.npz", dataset=DATASETS, method=EVALUATED),
        losses=expand("results/logs/train/{dataset}/{method}.csv", dataset=DATASETS, method=METHODS),
    output:
        "results/figures/metrics.png",
        expand("results/figures/samples_{dataset}.png", dataset=DATASETS),
        expand("results/figures/training_{dataset}.png", dataset=DATASETS),
        expand("results/figures/likelihood_{dataset}.png",
               dataset=DATASETS if HELDOUT_DENSITY else []),
        expand("results/figures/draws_{dataset}_{method}.png", dataset=DATASETS, method=STOCHASTIC),
    params:
        data=expand("data/{dataset}", dataset=DATASETS),
        methods=[m for m in EVALUATED if m != "hr"],
    conda:
        CONDA_ENV
    log:
        "results/logs/figures.log",
    shell:
        "affsr figures --metrics {input.metrics} --data {params.data} --methods {params.methods} "
        "--out-dir results/figures > {log} 2>&1"
