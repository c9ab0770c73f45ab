"""A new training objective is one new file in affsr/methods/ and one entry in params.yaml: no registry
line, no loop edit, no toy edit, no new rule (style.md). Tried as a new user would: a least-squares GAN
written as a subclass of the GAN objective (instance noise and phases inherited), trained on images and
on the 2-D toy, and planned by the workflow.

The package is copied to a temporary folder with the new file added, and every command runs in a
subprocess with that copy first on PYTHONPATH, so the repository itself is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

SCRATCH_OBJECTIVE = '''"""Least-squares GAN (Mao et al. 2017) through the projection: a scratch objective of the extensibility test."""

from torch import Tensor

from affsr.methods.gan import Objective as GAN
from affsr.methods.gan import Options  # noqa: F401  (the same knobs: instance noise, D steps)


class Objective(GAN):
    def discriminator_terms(self, real_logit: Tensor, fake_logit: Tensor) -> Tensor:
        return 0.5 * ((real_logit - 1) ** 2).mean() + 0.5 * (fake_logit**2).mean()

    def generator_term(self, fake_logit: Tensor) -> Tensor:
        return 0.5 * ((fake_logit - 1) ** 2).mean()
'''


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """(root, env): a copy of affsr with affsr/methods/lsgan.py added, tiny params with one new entry."""
    from conftest import tiny_params_dict

    root = tmp_path_factory.mktemp("scratch")
    shutil.copytree(REPO / "affsr", root / "pkg" / "affsr", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "pkg" / "affsr" / "methods" / "lsgan.py").write_text(SCRATCH_OBJECTIVE)
    params = tiny_params_dict()
    params["methods"]["lsgan"] = {"objective": "lsgan", "constraint": "projected",
                                  "options": {"instance_noise": 0.1, "d_steps": 1}}  # the one params entry
    repo_params = yaml.safe_load((REPO / "params.yaml").read_text())
    toy = repo_params["toy"]
    toy.update(restarts=2, kde_samples=2000, kde_grid_step=0.05, eval_samples=100, map_step=0.05, curve_points=11,
               skip=[m for m in params["methods"] if m not in ("mse", "lsgan")], methods={})
    toy["train"].update(steps=30, batch_size=16)
    params["toy"] = toy
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(root / "pkg")}
    return root, env


def _affsr(root: Path, env: dict, *argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "affsr", *map(str, argv)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_copy_is_what_runs(scratch):
    root, env = scratch
    out = subprocess.run([sys.executable, "-c", "import affsr.methods as m; print(m.__file__, m.available_objectives())"],
                         cwd=root, env=env, capture_output=True, text=True, check=True).stdout
    assert str(root / "pkg") in out and "'lsgan'" in out


def test_the_new_objective_trains_on_images(scratch, tiny_data):
    root, env = scratch
    run = _affsr(root, env, "train", "--quiet", "--dataset", "grass", "--method", "lsgan", "--data", tiny_data,
                 "--checkpoint", root / "runs/lsgan/model.pt", "--log", root / "runs/lsgan.csv")
    assert run.returncode == 0, run.stderr
    log = pd.read_csv(root / "runs/lsgan.csv")
    assert {"loss_discriminator", "loss_generator", "instance_noise"} <= set(log.columns)
    assert log["loss_generator"].notna().all() and len(log) >= 1
    evaluated = _affsr(root, env, "evaluate", "--data", tiny_data, "--method", "lsgan", "--checkpoint",
                       root / "runs/lsgan/model.pt", "--out", root / "lsgan_metrics.csv", "--c2st-steps", "2")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = pd.read_csv(root / "lsgan_metrics.csv").set_index("metric")["value"]
    assert metrics["lr_mse"] < 1e-10  # projected: consistent by construction, whatever the loss


def test_the_new_objective_reaches_the_toy_with_no_toy_edit(scratch):
    root, env = scratch
    run = _affsr(root, env, "toy", "--quiet", "--out", root / "toy/metrics.csv", "--table", root / "toy/table1.md",
                 "--figure", root / "toy/toy.png")
    assert run.returncode == 0, run.stderr
    toy = pd.read_csv(root / "toy/metrics.csv")
    lsgan = toy[toy["method"] == "lsgan"].set_index("metric")["value"]
    assert lsgan["lr_mse"] < 1e-10 and pd.notna(lsgan["cross_entropy"])
    assert "lsgan" in (root / "toy/table1.md").read_text()


def test_the_workflow_plans_the_new_method(scratch):
    root, env = scratch
    shutil.copytree(REPO / "workflow", root / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", "workflow/Snakefile", "-n", "--cores", "1",
                          "--quiet", "rules"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr + run.stdout
    dry = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", "workflow/Snakefile", "-n", "--cores", "1",
                          "results/eval/grass/lsgan.csv"], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert dry.returncode == 0, dry.stderr + dry.stdout
    assert "runs/grass/lsgan/model.pt" in dry.stdout and "results/eval/grass/lsgan.csv" in dry.stdout
