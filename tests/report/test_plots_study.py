"""Tests for affsr.report.plots.study: the image study's figures made from files on disk (test split, saved samples,
loss logs), as ``affsr figures`` draws them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from png_checks import read_png

from affsr.errors import DataError
from affsr.report.plots.study import dataset_figures, study_figures


def _study(tmp_path: Path, tiny_data: Path) -> tuple[Path, Path, pd.DataFrame]:
    """Samples of mse, pinv and a stochastic method (with draws), two loss logs, and a metrics table."""
    with np.load(tiny_data / "test.npz") as z:
        hr = z["hr"] / 255.0
    samples, logs = tmp_path / "samples" / "grass", tmp_path / "logs" / "grass"
    samples.mkdir(parents=True)
    logs.mkdir(parents=True)
    np.savez(samples / "mse.npz", sr=hr * 0.9)
    np.savez(samples / "pinv.npz", sr=hr[:5])  # fewer samples: the grid shows the common number
    draws = np.clip(hr[:, None] + 0.05 * np.random.default_rng(0).standard_normal((len(hr), 3, *hr.shape[1:])), 0, 1)
    np.savez(samples / "affgan_z.npz", sr=draws[:, 0], draws=draws)
    pd.DataFrame({"step": np.arange(20), "loss_pixel": np.linspace(1, 0.1, 20)}).to_csv(logs / "mse.csv", index=False)
    pd.DataFrame(columns=["step", "loss_pixel"]).to_csv(logs / "empty.csv", index=False)  # skipped
    metrics = pd.DataFrame(
        [("grass", m, "psnr", 20.0 + i) for i, m in enumerate(("mse", "pinv", "affgan_z"))]
        + [("grass", "affgan_z", "diversity", 0.05), ("toy", "mse", "psnr", 99.0)],
        columns=["dataset", "method", "metric", "value"])
    return tmp_path / "samples", tmp_path / "logs", metrics


def test_dataset_figures_writes_grid_draws_and_curves(tmp_path, tiny_data):
    samples, logs, metrics = _study(tmp_path, tiny_data)
    out = tmp_path / "figures"
    dataset_figures(tiny_data, ["mse", "pinv", "affgan_z"], samples, logs, metrics, out)
    assert sorted(p.name for p in out.iterdir()) == ["draws_grass_affgan_z.png", "samples_grass.png",
                                                     "training_grass.png"]  # no cross_entropy: no likelihood plot
    for p in out.iterdir():
        read_png(p)


def test_study_figures_adds_the_metrics_plot_without_the_toy(tmp_path, tiny_data, monkeypatch):
    samples, logs, metrics = _study(tmp_path, tiny_data)
    seen = []
    monkeypatch.setattr("affsr.report.plots.study.metrics_plot", lambda frame, path: seen.append((frame, path)))
    study_figures(metrics, [tiny_data], ["mse"], samples, logs, tmp_path / "f")
    (frame, path), = seen
    assert path == tmp_path / "f" / "metrics.png" and "toy" not in set(frame["dataset"])
    study_figures(metrics, [], ["mse"], samples, logs, tmp_path / "g", with_metrics=False)
    assert len(seen) == 1 and not (tmp_path / "g").exists()


def test_missing_samples_name_the_file_and_the_command(tmp_path, tiny_data):
    samples, logs, metrics = _study(tmp_path, tiny_data)
    missing = samples / "grass" / "affgan.npz"
    with pytest.raises(DataError, match=rf"{missing}: samples not found; run `affsr evaluate \.\.\. --samples"):
        dataset_figures(tiny_data, ["mse", "affgan"], samples, logs, metrics, tmp_path / "figures")
    with pytest.raises(ValueError, match="methods"):
        dataset_figures(tiny_data, [], samples, logs, metrics, tmp_path / "figures")


def test_named_log_files_leave_a_stale_log_out(tmp_path, tiny_data, monkeypatch):
    """The workflow names the logs of its runs: a log left from a method no longer in params.yaml is not
    drawn (without names, every log of the folder is)."""
    samples, logs, metrics = _study(tmp_path, tiny_data)
    pd.DataFrame({"step": [1, 2], "loss_pixel": [1.0, 0.5]}).to_csv(logs / "grass" / "removed.csv", index=False)
    drawn = []
    monkeypatch.setattr("affsr.report.plots.study.training_curves", lambda found, path: drawn.append(sorted(found)))
    dataset_figures(tiny_data, ["mse"], samples, logs, metrics, tmp_path / "f", log_files=[logs / "grass" / "mse.csv"])
    dataset_figures(tiny_data, ["mse"], samples, logs, metrics, tmp_path / "g")
    assert drawn == [["grass/mse"], ["grass/mse", "grass/removed"]]
