"""What the report shows of how a study was made: its effective parameters and the software versions."""

from __future__ import annotations

import dataclasses
import json
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from affsr.atomic_files import write_csv, write_text
from affsr.config.study import Params

#: Distributions whose versions the report lists.
VERSIONED = ("affsr", "torch", "numpy", "pandas", "scikit-image", "pillow", "matplotlib", "seaborn", "pyyaml",
             "snakemake", "snakemake-executor-plugin-slurm", "dvc")


def effective_params(params: Params) -> dict:
    """The validated params (the chosen study applied) as plain data, tuples as lists, for YAML."""
    return json.loads(json.dumps(dataclasses.asdict(params)))


def software_versions() -> pd.DataFrame:
    """Python, the platform and each of :data:`VERSIONED` (``not installed`` where absent)."""
    rows = [("python", platform.python_version()), ("platform", platform.platform())]
    for name in VERSIONED:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    return pd.DataFrame(rows, columns=["software", "version"])


def write_provenance(out_dir: Path, settings: dict) -> None:
    """``out_dir``/params.yaml (the effective parameters) and ``out_dir``/versions.csv."""
    write_text(Path(out_dir) / "params.yaml",
               "# effective parameters of this study (params.yaml with the chosen study applied)\n"
               + yaml.safe_dump(settings, sort_keys=False, allow_unicode=True))
    write_csv(Path(out_dir) / "versions.csv", software_versions())
