rule evaluate:
    """Consistency (lr_mse, lr_rel) and quality (PSNR, SSIM) on the test split."""
    input:
        "data/{dataset}/test.npz",
        "data/{dataset}/manifest.json",
        code=evaluate_code,
        checkpoint=trained_checkpoint,
        density=density_checkpoint,
    output:
        metrics="results/eval/{dataset}/{method}.csv",
        samples="results/samples/{dataset}/{method}.npz",
    params:
        checkpoint=lambda w: option("--checkpoint", trained_checkpoint(w)),
        density=lambda w: option("--density", density_checkpoint(w)),
        n_samples=PARAMS.evaluate.n_samples,
        c2st_steps=PARAMS.evaluate.c2st_steps,
    threads: resources("evaluate")[0]
    resources:
        **resources("evaluate")[1],
    conda:
        CONDA_ENV
    log:
        "results/logs/evaluate/{dataset}/{method}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{method}.tsv"
    shell:
        "affsr evaluate --threads {threads} --data data/{wildcards.dataset} --method {wildcards.method} {params.checkpoint} {params.density} "
        "--out {output.metrics} --samples {output.samples} --n-samples {params.n_samples} "
        "--c2st-steps {params.c2st_steps} > {log} 2>&1"


rule aggregate:
    """One tidy table (dataset, method, metric, value) and a Markdown summary."""
    input:
        metrics=expand("results/eval/{dataset}/{method}.csv", dataset=DATASETS, method=EVALUATED)
        + ["results/toy/metrics.csv"],
        code=code("aggregate"),
    output:
        metrics=report("results/metrics.csv", caption="../report/table.rst", category="Metrics",
                       labels={"table": "all metrics"}),
        json="results/metrics.json",
        summary="results/summary.md",
    conda:
        CONDA_ENV
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    shell:
        "affsr aggregate {input.metrics} --out {output.metrics} --json {output.json} --summary {output.summary} > {log} 2>&1"
