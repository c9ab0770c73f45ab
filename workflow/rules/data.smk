rule download:
    """A downloaded source's archive: resumable, retried, SHA-256 checked, moved into place atomically."""
    input:
        code=code("download"),
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
    benchmark:
        "results/benchmarks/download/{dataset}/{filename}.tsv"
    shell:
        "affsr download --quiet --dataset {wildcards.dataset} --settings {params.settings:q} "
        "--out {output} > {log} 2>&1"


rule prepare:
    """HR images (patches from disjoint regions, or whole images split by image) + their LR images made with A.
    Reads the download rule's archive, or nothing (images shipped with scikit-image); a `path:` source
    (ImageNet) reads a folder outside the study that is not declared: replace its files, then rerun
    with `--forcerun prepare`."""
    input:
        code=code("prepare"),
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
    benchmark:
        "results/benchmarks/prepare/{dataset}.tsv"
    shell:
        "affsr prepare --quiet --dataset {wildcards.dataset} --settings {params.settings:q} {params.archive} "
        "--out data/{wildcards.dataset} > {log} 2>&1"
