"""Shared fixtures: one tiny prepared data set per session and tiny, valid params / run settings.

Everything is sized for a 2-core CPU: 16×16 HR patches (4×4 LR with the default 9×9 Gaussian at scale 4),
a generator of width 8 with one residual block, a two-layer discriminator, batches of 8.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from affsr.config.study import RunSettings
from affsr.data.prepare import prepare
from affsr.config.data import OperatorConfig
from affsr.operators.downsampling import Downsampling
from affsr.operators.kinds import build_operator
from affsr.params import load_params, resolve

# The networks here are tiny: one thread is as fast as two and does not fight other jobs for the cores
# (OpenMP threads spin-wait, which makes a 2-core machine shared with another torch job crawl).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
REPO_PARAMS = REPO / "params.yaml"

HR_SIZE = 16
COUNTS = {"n_train": 64, "n_val": 8, "n_test": 8}

# The same shape as params.yaml, shrunk. Tests get a deep copy (see ``tiny_params``) and may modify it.
_TINY_PARAMS = {
    "seed": 0,
    "operator": {"kind": "gaussian", "sigma": 1.0, "size": 9, "scale": 4},
    "datasets": {"grass": {"source": "skimage_grass", "hr_size": HR_SIZE, **COUNTS}},
    "generator": {"width": 8, "blocks": 1},
    "discriminator": {"widths": [8, 16]},
    "train": {
        "steps": 20,
        "batch_size": 8,
        "lr": 0.001,
        "beta1": 0.5,
        "beta2": 0.999,
        "log_every": 5,
        "checkpoint_every": 10,
        "device": "cpu",
    },
    "methods": {
        "mse": {"objective": "pixel", "constraint": "none", "options": {"loss": "l2"}},
        "affgan": {
            "objective": "gan",
            "constraint": "projected",
            "options": {"instance_noise": 0.1, "noise_anneal": 1.0, "d_steps": 1},
        },
    },
    "evaluate": {"n_samples": 4, "references": ["bicubic", "pinv"]},
}


def operator_of(kind: str, **settings) -> Downsampling:
    """A of one kind from its ``operator:`` settings, as params.yaml builds it."""
    return build_operator(OperatorConfig(kind=kind, **settings))


def tiny_params_dict() -> dict:
    """A fresh, valid, tiny params dict (same keys as params.yaml); safe to modify."""
    return copy.deepcopy(_TINY_PARAMS)


@pytest.fixture(autouse=True)
def _cpu_determinism():
    """Tests must not depend on the order they run in: reset the global torch seed for each."""
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_params() -> dict:
    """A fresh tiny params dict for one test."""
    return tiny_params_dict()


@pytest.fixture
def make_settings():
    """``make_settings(method="mse", params=None, **train_overrides)`` → a tiny RunSettings."""

    def make(method: str = "mse", params: dict | None = None, **train: object) -> RunSettings:
        p = copy.deepcopy(params) if params is not None else tiny_params_dict()
        p["train"].update(train)
        return RunSettings.parse(resolve(load_params(p), "grass", method))

    return make


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A prepared data set (skimage grass, 16 px HR, Gaussian σ=1 9×9 at scale 4), made once per session.

    Read-only for tests: copy it before changing anything in it.
    """
    out = tmp_path_factory.mktemp("data") / "grass"
    prepare(
        source="skimage_grass",
        out_dir=out,
        hr_size=HR_SIZE,
        op=Downsampling.gaussian(1.0, 9, 4),
        seed=0,
        dataset="grass",
        **COUNTS,
    )
    return out


@pytest.fixture(scope="session")
def affmse_checkpoint(tmp_path_factory, tiny_data) -> Path:
    """A projected (affmse) grey model trained for 3 steps on the tiny grass data, once per session: the
    checkpoint the upscale tests run."""
    import yaml

    from affsr.cli import main

    root = tmp_path_factory.mktemp("affmse")
    params = tiny_params_dict()
    params["train"]["steps"] = 3
    params["methods"]["affmse"] = {"objective": "pixel", "constraint": "projected", "options": {"loss": "l2"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["train", "--quiet", "--params", str(root / "params.yaml"), "--dataset", "grass", "--method",
                 "affmse", "--data", str(tiny_data), "--checkpoint", str(root / "model.pt"),
                 "--log", str(root / "losses.csv")]) == 0
    return root / "model.pt"


def make_celeba_zip(path: Path, numbers: list[int], seed: int = 0) -> Path:
    """A small stand-in for CelebA's img_align_celeba.zip: 178×218 RGB JPEGs named by their file number
    (the official partition is by number), so the real CelebA code path can be tested offline."""
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for number in numbers:
            pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            archive.writestr(f"img_align_celeba/{number:06d}.jpg", buffer.getvalue())
    return path


#: file numbers in each of CelebA's official splits (train ≤ 162770 < val ≤ 182637 < test)
CELEBA_NUMBERS = [1, 2, 3, 4, 5, 162770, 162771, 162772, 182637, 182638, 182639, 202599]


# ---- one 32-px grass set, shared by the data tests (test_data, test_patches, test_prepared) ----------------

GRASS32_HR = 32
GRASS32_COUNTS = dict(n_train=12, n_val=5, n_test=4)


@pytest.fixture(scope="session")
def op() -> Downsampling:
    """The paper's A: 9×9 Gaussian, σ 1, stride 4."""
    return Downsampling.gaussian(sigma=1.0, size=9, scale=4)


@pytest.fixture(scope="session")
def grass_dir(tmp_path_factory, op) -> Path:
    """skimage grass prepared at 32 px HR (read-only: copy before changing anything)."""
    out = tmp_path_factory.mktemp("grass32")
    prepare("skimage_grass", out, GRASS32_HR, op, seed=0, **GRASS32_COUNTS)
    return out


def npz_arrays(d: Path, split: str) -> dict[str, np.ndarray]:
    """Every array of a prepared split file, as stored."""
    with np.load(d / f"{split}.npz") as z:
        return {k: z[k] for k in z.files}
