# Shared helpers: the validated params, the run lists, and the package files each stage depends on.
import json
from pathlib import Path

import affsr
from affsr.config import ConfigError, load_params, resolve, resolve_dataset

try:
    PARAMS = load_params(config)
except ConfigError as err:
    raise WorkflowError(f"params.yaml: {err}") from None

DATASETS = list(PARAMS.datasets)
METHODS = list(PARAMS.methods)
REFERENCES = list(PARAMS.evaluate.references)
PACKAGE = Path(affsr.__file__).parent
CONDA_ENV = "../envs/affsr.yaml"


def code(*modules):
    """The affsr source files a step runs, as inputs (editing one reruns the step)."""
    return [str(PACKAGE / f"{m}.py") for m in modules]


def run_settings(wildcards):
    """Resolved settings of one training run, as JSON (a params change reruns exactly this run)."""
    return json.dumps(resolve(PARAMS, wildcards.dataset, wildcards.method), sort_keys=True)


def dataset_settings(wildcards):
    return json.dumps(resolve_dataset(PARAMS, wildcards.dataset), sort_keys=True)


def trained_checkpoint(wildcards):
    """A trained run's checkpoint; references (bicubic, pinv) need none."""
    if wildcards.method in REFERENCES:
        return []
    return f"runs/{wildcards.dataset}/{wildcards.method}/model.pt"
