"""Tests for affsr.report.plots.training: training-loss curves of several runs, and the errors for bad logs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from png_checks import no_temp_files, read_png

from affsr.report.plots.training import training_curves

def _log(n: int = 200, seed: int = 0, negative: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    step = np.arange(n) * 10
    df = pd.DataFrame(
        {
            "step": step,
            "loss_generator": 2.0 * np.exp(-step / 800) + 0.1 * rng.random(n) + 0.05,
            "loss_discriminator": 0.7 + 0.1 * rng.standard_normal(n) ** 2,
            "instance_noise": np.linspace(1.0, 0.0, n),
        }
    )
    if negative:
        df["loss_pixel"] = rng.standard_normal(n)
    return df


def test_training_curves_writes_png(tmp_path: Path) -> None:
    logs = {
        "grass/affgan": _log(),
        "grass/mse": pd.DataFrame({"step": np.arange(50), "loss_pixel": np.linspace(1, 0.01, 50)}),
        "celeba/affgan": _log(seed=1, negative=True),  # negative values -> linear axis
        "celeba/tiny": pd.DataFrame({"step": [0], "loss_pixel": [0.5]}),
    }
    out = tmp_path / "curves" / "train.png"
    training_curves(logs, out)
    img = read_png(out)
    assert img.std() > 0.01
    no_temp_files(out.parent)


def test_training_curves_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        training_curves({}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="empty"):
        training_curves({"r": pd.DataFrame(columns=["step", "loss_x"])}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="step"):
        training_curves({"r": pd.DataFrame({"loss_x": [1.0]})}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="loss_"):
        training_curves({"r": pd.DataFrame({"step": [0], "other": [1.0]})}, tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []
