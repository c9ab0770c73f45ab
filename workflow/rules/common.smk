# Shared helpers: the validated params, the run lists, and the package files each stage depends on.
import dataclasses
import json
from pathlib import Path

import affsr
from affsr.config import ConfigError, load_params, resolve, resolve_dataset, resolve_toy, rule_resources
from affsr.methods import super_resolves
from affsr.sources import SOURCES

try:
    PARAMS = load_params(config)
except ConfigError as err:
    raise WorkflowError(f"params.yaml: {err}") from None

STUDY = PARAMS.study  # demo | paper (`--config study=paper`)
DATASETS = list(PARAMS.datasets)
METHODS = list(PARAMS.methods)  # every training run, auxiliary ones (denoiser, density models) too
SR_METHODS = [m for m in METHODS if super_resolves(PARAMS.methods[m].objective)]
STOCHASTIC = [m for m in SR_METHODS if {**vars(PARAMS.generator), **PARAMS.methods[m].generator}["noise"] > 0]
HELDOUT_DENSITY = PARAMS.evaluate.density  # a method name, or "" for no cross-entropy
REFERENCES = list(PARAMS.evaluate.references) + ["hr"]  # hr: the real images, the realism floor
EVALUATED = REFERENCES + SR_METHODS
PACKAGE = Path(affsr.__file__).parent
CONDA_ENV = "../envs/affsr.yaml"


def code(*modules):
    """The affsr source files a step runs, as inputs (editing one reruns the step); every step
    enters through the command line and reads its settings through config."""
    return [str(PACKAGE / f"{m}.py") for m in ("cli", "config", *modules)]


def run_settings(wildcards):
    """Resolved settings of one training run, as JSON (a params change reruns exactly this run)."""
    return json.dumps(resolve(PARAMS, wildcards.dataset, wildcards.method), sort_keys=True)


def toy_settings(wildcards):
    return json.dumps(resolve_toy(PARAMS), sort_keys=True)


def dataset_settings(wildcards):
    return json.dumps(resolve_dataset(PARAMS, wildcards.dataset), sort_keys=True)


def trained_checkpoint(wildcards):
    """A trained run's checkpoint; references (bicubic, pinv, hr) need none."""
    if wildcards.method in REFERENCES:
        return []
    return [f"runs/{wildcards.dataset}/{wildcards.method}/model.pt"]


def guide_checkpoint(wildcards):
    """The auxiliary run whose snapshots guide this one (AffDG: the denoiser; AffLL: the density)."""
    guide = PARAMS.methods[wildcards.method].guide
    return [f"runs/{wildcards.dataset}/{guide}/model.pt"] if guide else []


def density_checkpoint(wildcards):
    """The held-out density model that scores every method's outputs (cross-entropy)."""
    return [f"runs/{wildcards.dataset}/{HELDOUT_DENSITY}/model.pt"] if HELDOUT_DENSITY else []


def option(flag, paths):
    """`--flag path` for an optional single input, or nothing."""
    return f"{flag} {paths[0]}" if paths else ""


def downloaded_file(wildcards):
    """The archive a downloaded source reads (the download rule's output), or nothing."""
    ds = PARAMS.datasets[wildcards.dataset]
    if SOURCES[ds.source].input != "download":
        return []
    return [f"data/downloads/{wildcards.dataset}/{ds.download.filename}"]


def resources(rule):
    """(threads, resources dict) of a rule's jobs, from params `resources:`."""
    r = rule_resources(PARAMS, rule)
    return r.threads, {"mem_mb": r.mem_mb, "runtime": r.runtime, "gpu": r.gpu}
