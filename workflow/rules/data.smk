rule download:
    """A downloaded source's archive: resumable, retried, SHA-256 checked, moved into place atomically."""
    input:
        code("download"),
    output:
        "data/downloads/{dataset}/{filename}",
    params:
        settings=dataset_settings,
    threads: resources("download")[0]
    resources:
        **resources("download")[1],
    conda:
        CONDA_ENV
    log:
        "results/logs/download/{dataset}/{filename}.log",
    shell:
        "affsr download --quiet --dataset {wildcards.dataset} --settings {params.settings:q} "
        "--out {output} > {log} 2>&1"


rule prepare:
    """HR images (patches from disjoint regions, or whole images split by image) + their LR images made with A."""
    input:
        code("data", "sources", "images", "operators", "files"),
        archive=downloaded_file,
    output:
        multiext("data/{dataset}/", "train.npz", "val.npz", "test.npz", "manifest.json"),
    params:
        settings=dataset_settings,
        archive=lambda w: option("--input", downloaded_file(w)),
    threads: resources("prepare")[0]
    resources:
        **resources("prepare")[1],
    conda:
        CONDA_ENV
    log:
        "results/logs/prepare/{dataset}.log",
    shell:
        "affsr prepare --quiet --dataset {wildcards.dataset} --settings {params.settings:q} {params.archive} "
        "--out data/{wildcards.dataset} > {log} 2>&1"
