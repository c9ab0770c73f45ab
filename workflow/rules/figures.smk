rule figures:
    """Sample grid and training curves per data set, and the metrics plot."""
    input:
        code("plots"),
        metrics="results/metrics.csv",
        samples=expand("results/samples/{dataset}/{method}.npz", dataset=DATASETS, method=EVALUATED),
        losses=expand("results/logs/train/{dataset}/{method}.csv", dataset=DATASETS, method=METHODS),
    output:
        report("results/figures/metrics.png", caption="../report/metrics.rst", category="Metrics"),
        [report(f"results/figures/samples_{d}.png", caption="../report/samples.rst", category="Samples",
                subcategory=d, labels={"data set": d, "figure": "samples"}) for d in DATASETS],
        [report(f"results/figures/training_{d}.png", caption="../report/training.rst", category="Training",
                subcategory=d, labels={"data set": d, "figure": "loss curves"}) for d in DATASETS],
        [report(f"results/figures/likelihood_{d}.png", caption="../report/likelihood.rst",
                category="Perception vs distortion", subcategory=d, labels={"data set": d, "figure": "likelihood"})
         for d in (DATASETS if HELDOUT_DENSITY else [])],
        [report(f"results/figures/draws_{d}_{m}.png", caption="../report/draws.rst", category="Several answers",
                subcategory=d, labels={"data set": d, "method": m}) for d in DATASETS for m in STOCHASTIC],
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


rule provenance:
    """The effective params (study applied) and the software versions, for the report."""
    input:
        code(),
    output:
        params=report("results/provenance/params.yaml", caption="../report/provenance.rst",
                      category="Provenance", labels={"file": "effective params"}),
        versions=report("results/provenance/versions.csv", caption="../report/provenance.rst",
                        category="Provenance", labels={"file": "software versions"}),
    params:
        settings=lambda w: json.dumps(dataclasses.asdict(PARAMS)),
    conda:
        CONDA_ENV
    log:
        "results/logs/provenance.log",
    shell:
        "affsr provenance --settings {params.settings:q} --out-dir results/provenance > {log} 2>&1"


rule claims:
    """The paper's claims, each with our measurement, the paper's value and a computed verdict."""
    input:
        code("claims", "evaluate"),
        metrics="results/metrics.csv",
    output:
        report("results/claims.md", caption="../report/claims.rst", category="Claims",
               labels={"file": "claims table"}),
    conda:
        CONDA_ENV
    log:
        "results/logs/claims.log",
    shell:
        "affsr claims --metrics {input.metrics} --out {output} > {log} 2>&1"
