rule figures:
    """The metrics plot: every data set side by side."""
    input:
        metrics="results/metrics.csv",
        code=code("figures"),
    output:
        report("results/figures/metrics.png", caption="../report/metrics.rst", category="Metrics"),
    conda:
        CONDA_ENV
    log:
        "results/logs/figures.log",
    benchmark:
        "results/benchmarks/figures.tsv"
    shell:
        "affsr figures --metrics {input.metrics} --out-dir results/figures > {log} 2>&1"


rule dataset_figures:
    """One data set's sample grid, training curves, likelihood plot and draws: from its own evaluations,
    so it is drawn while the other data sets still train. Reads the test split (the grids' LR and HR
    rows), every evaluated method's samples and the loss log of every run of this study."""
    input:
        "data/{dataset}/test.npz",
        metrics=lambda w: expand("results/eval/{dataset}/{method}.csv", dataset=w.dataset, method=EVALUATED),
        samples=lambda w: expand("results/samples/{dataset}/{method}.npz", dataset=w.dataset, method=EVALUATED),
        losses=lambda w: expand("results/logs/train/{dataset}/{method}.csv", dataset=w.dataset, method=METHODS),
        code=code("figures"),
    output:
        report("results/figures/samples_{dataset}.png", caption="../report/samples.rst", category="Samples",
               subcategory="{dataset}", labels={"data set": "{dataset}", "figure": "samples"}),
        report("results/figures/training_{dataset}.png", caption="../report/training.rst", category="Training",
               subcategory="{dataset}", labels={"data set": "{dataset}", "figure": "loss curves"}),
        [report("results/figures/likelihood_{dataset}.png", caption="../report/likelihood.rst",
                category="Perception vs distortion", subcategory="{dataset}",
                labels={"data set": "{dataset}", "figure": "likelihood"})] if HELDOUT_DENSITY else [],
        [report(f"results/figures/draws_{{dataset}}_{m}.png", caption="../report/draws.rst",
                category="Several answers", subcategory="{dataset}", labels={"data set": "{dataset}", "method": m})
         for m in STOCHASTIC],
    params:
        methods=[m for m in EVALUATED if m != "hr"],
    conda:
        CONDA_ENV
    log:
        "results/logs/figures/{dataset}.log",
    benchmark:
        "results/benchmarks/dataset_figures/{dataset}.tsv"
    shell:
        "affsr figures --no-metrics-plot --metrics {input.metrics} --data data/{wildcards.dataset} "
        "--methods {params.methods} --logs {input.losses} --out-dir results/figures > {log} 2>&1"


rule provenance:
    """The effective params (study applied), the software versions and the lock they were installed from
    (its digest, and whether the venv matches it), for the report."""
    input:
        code=code("provenance"),
        lock=LOCK_FILE,  # a new lock (a new install) records itself again
    output:
        params=report("results/provenance/params.yaml", caption="../report/provenance.rst",
                      category="Provenance", labels={"file": "effective params"}),
        versions=report("results/provenance/versions.csv", caption="../report/provenance.rst",
                        category="Provenance", labels={"file": "software versions"}),
        install=report("results/provenance/install.csv", caption="../report/provenance.rst",
                       category="Provenance", labels={"file": "install: the lock's digest"}),
    params:
        settings=lambda w: json.dumps(dataclasses.asdict(PARAMS)),
    conda:
        CONDA_ENV
    log:
        "results/logs/provenance.log",
    benchmark:
        "results/benchmarks/provenance.tsv"
    shell:
        "affsr provenance --settings {params.settings:q} --out-dir results/provenance > {log} 2>&1"


rule claims:
    """The paper's claims, each with our measurement, the paper's value and a computed verdict."""
    input:
        metrics="results/metrics.csv",
        tiers=list(OTHER_TIERS.values()),
        code=code("claims"),
    output:
        report("results/claims.md", caption="../report/claims.rst", category="Claims",
               labels={"file": "claims table"}),
    params:
        study=STUDY,
        tiers=" ".join(f"--tier {tier}={path}" for tier, path in OTHER_TIERS.items()),
    conda:
        CONDA_ENV
    log:
        "results/logs/claims.log",
    benchmark:
        "results/benchmarks/claims.tsv"
    shell:
        "affsr claims --study {params.study} --metrics {input.metrics} {params.tiers} --out {output} > {log} 2>&1"
