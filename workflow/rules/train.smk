rule train:
    """One method on one data set through the shared loop; resumes from runs/.../.resume (state kept
    outside the declared outputs on purpose: Snakemake deletes outputs before a rerun)."""
    input:
        train_split,
        "data/{dataset}/manifest.json",
        code=train_code,
        guide=guide_checkpoint,
    output:
        checkpoint="runs/{dataset}/{method}/model.pt",
        losses="results/logs/train/{dataset}/{method}.csv",
    params:
        settings=run_settings,
        guide=lambda w: option("--guide", guide_checkpoint(w)),
    threads: resources("train")[0]
    resources:
        **resources("train")[1],
    priority: train_priority
    conda:
        CONDA_ENV
    log:
        "results/logs/train/{dataset}/{method}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{method}.tsv"
    shell:
        "exec affsr train --quiet --threads {threads} --discard-stale-resume --dataset {wildcards.dataset} --method {wildcards.method} "
        "--settings {params.settings:q} --data data/{wildcards.dataset} "
        "--checkpoint {output.checkpoint} --log {output.losses} {params.guide} > {log} 2>&1"
