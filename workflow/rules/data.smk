rule prepare:
    """HR patches from disjoint image regions + their LR images made with A."""
    input:
        code("data", "operators", "files"),
    output:
        multiext("data/{dataset}/", "train.npz", "val.npz", "test.npz", "manifest.json"),
    params:
        settings=dataset_settings,
    conda:
        CONDA_ENV
    log:
        "results/logs/prepare/{dataset}.log",
    shell:
        "affsr prepare --dataset {wildcards.dataset} --settings {params.settings:q} "
        "--out data/{wildcards.dataset} > {log} 2>&1"
