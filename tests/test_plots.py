"""Tests for affsr.plots: every figure is written as a valid PNG, atomically, with validation."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from affsr import plots

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _read_png(path: Path) -> np.ndarray:
    assert path.exists(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIG, "not a PNG file"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, img.shape
    return img


def _no_temp_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    assert leftovers == [], leftovers


def _images(n: int = 3, c: int = 1, h: int = 8, s: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    H = h * s
    hr = rng.uniform(-0.05, 1.05, size=(n, c, H, H))  # slightly outside [0,1] on purpose
    lr = hr.reshape(n, c, h, s, h, s).mean(axis=(3, 5))
    outs = {
        "bicubic": np.clip(hr + 0.1 * rng.standard_normal(hr.shape), 0, 1),
        "A⁺x": hr * 0.9,
        "mse": hr * 0.8,
    }
    return lr, hr, outs


# --------------------------------------------------------------------------- sample_grid


@pytest.mark.parametrize("c", [1, 3])
def test_sample_grid_grey_and_rgb(tmp_path: Path, c: int) -> None:
    lr, hr, outs = _images(c=c)
    out = tmp_path / "sub" / "dir" / "grid.png"  # parent dirs are created
    plots.sample_grid(lr, hr, outs, out, title=f"C={c}")
    img = _read_png(out)
    assert img.std() > 0.01  # not a blank canvas
    _no_temp_files(out.parent)


def test_sample_grid_width_grows_with_columns(tmp_path: Path) -> None:
    lr, hr, outs = _images()
    p1, p3 = tmp_path / "one.png", tmp_path / "three.png"
    plots.sample_grid(lr, hr, {"bicubic": outs["bicubic"]}, p1)
    plots.sample_grid(lr, hr, outs, p3)
    w1, w3 = _read_png(p1).shape[1], _read_png(p3).shape[1]
    assert w3 > w1 * 1.3, (w1, w3)


def test_sample_grid_height_grows_with_rows_and_respects_max_rows(tmp_path: Path) -> None:
    lr, hr, outs = _images(n=8)
    p2, p6, p8 = tmp_path / "r2.png", tmp_path / "r6.png", tmp_path / "r8.png"
    plots.sample_grid(lr[:2], hr[:2], {k: v[:2] for k, v in outs.items()}, p2)
    plots.sample_grid(lr[:6], hr[:6], {k: v[:6] for k, v in outs.items()}, p6)
    plots.sample_grid(lr, hr, outs, p8, max_rows=6)
    h2, h6, h8 = (_read_png(p).shape[0] for p in (p2, p6, p8))
    assert h6 > h2
    assert h8 == h6  # capped at max_rows


def test_sample_grid_overwrites_existing_file(tmp_path: Path) -> None:
    lr, hr, outs = _images()
    out = tmp_path / "grid.png"
    out.write_bytes(b"old")
    plots.sample_grid(lr, hr, outs, out)
    _read_png(out)
    _no_temp_files(tmp_path)
    # normal file permissions, not the 0600 a bare mkstemp would leave
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_sample_grid_non_integer_scale(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    hr = rng.uniform(size=(2, 3, 20, 20))
    lr = rng.uniform(size=(2, 3, 7, 7))
    plots.sample_grid(lr, hr, {"x": hr}, tmp_path / "g.png")
    _read_png(tmp_path / "g.png")


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda lr, hr, o: (lr, hr, {}), "empty"),
        (lambda lr, hr, o: (lr, hr, {**o, "bad": o["mse"][:, :, :-1]}), "shape"),
        (lambda lr, hr, o: (lr[:2], hr, o), "images"),
        (lambda lr, hr, o: (lr, hr[:, :, :, :, None], o), "4-D"),
        (lambda lr, hr, o: (lr[:0], hr[:0], {k: v[:0] for k, v in o.items()}), "no images"),
        (lambda lr, hr, o: (np.repeat(lr, 2, 1), np.repeat(hr, 2, 1), o), "channel"),
    ],
)
def test_sample_grid_rejects_bad_input(tmp_path: Path, mutate, match: str) -> None:
    lr, hr, outs = _images()
    lr, hr, outs = mutate(lr, hr, outs)
    out = tmp_path / "grid.png"
    with pytest.raises(ValueError, match=match):
        plots.sample_grid(lr, hr, outs, out)
    assert not out.exists()
    _no_temp_files(tmp_path)


# --------------------------------------------------------------------------- metrics_plot


def _metrics(zero: bool = True) -> pd.DataFrame:
    rows = []
    for ds in ("grass", "celeba"):
        for mi, method in enumerate(("bicubic", "A⁺x", "mse", "affgan")):
            rows += [
                (ds, method, "psnr", 22.0 + mi),
                (ds, method, "ssim", 0.6 + 0.05 * mi),
                (ds, method, "lr_mse", 0.0 if (zero and mi == 1) else 10.0 ** (-14 + mi * 3)),
                (ds, method, "lr_rel", 1e-14 if mi else 0.3),
            ]
    rows.append(("grass", "affgan", "fid", 42.0))  # extra metric goes after the known ones
    return pd.DataFrame(rows, columns=["dataset", "method", "metric", "value"])


def test_metrics_plot_writes_png_with_zero_log_values(tmp_path: Path) -> None:
    out = tmp_path / "m" / "metrics.png"
    plots.metrics_plot(_metrics(zero=True), out)
    img = _read_png(out)
    assert img.std() > 0.01
    _no_temp_files(out.parent)


def test_metrics_plot_single_metric_and_missing_combinations(tmp_path: Path) -> None:
    df = _metrics()
    df = df[(df.metric == "lr_mse")].iloc[:-1]  # one dataset/method pair missing
    out = tmp_path / "one.png"
    plots.metrics_plot(df, out)
    _read_png(out)


def test_metrics_plot_all_zero_log_metric(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {"dataset": ["d", "d"], "method": ["a", "b"], "metric": ["lr_rel", "lr_rel"], "value": [0.0, 0.0]}
    )
    plots.metrics_plot(df, tmp_path / "z.png")
    _read_png(tmp_path / "z.png")


def test_metrics_plot_rejects_empty_or_malformed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        plots.metrics_plot(pd.DataFrame(columns=["dataset", "method", "metric", "value"]), tmp_path / "a.png")
    with pytest.raises(ValueError, match="missing column"):
        plots.metrics_plot(pd.DataFrame({"method": ["a"], "value": [1.0]}), tmp_path / "b.png")
    assert list(tmp_path.iterdir()) == []


def test_compact_format() -> None:
    assert plots._compact(0.0) == "0"
    assert plots._compact(1.234e-14) == "1.2e-14"
    assert plots._compact(25.345) == "25.3"
    assert plots._compact(0.8123) == "0.812"
    assert plots._compact(float("nan")) == "n/a"


# --------------------------------------------------------------------------- training_curves


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
    plots.training_curves(logs, out)
    img = _read_png(out)
    assert img.std() > 0.01
    _no_temp_files(out.parent)


def test_training_curves_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        plots.training_curves({}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="empty"):
        plots.training_curves({"r": pd.DataFrame(columns=["step", "loss_x"])}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="step"):
        plots.training_curves({"r": pd.DataFrame({"loss_x": [1.0]})}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="loss_"):
        plots.training_curves({"r": pd.DataFrame({"step": [0], "other": [1.0]})}, tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- LR display on A's grid


@pytest.mark.parametrize("s", [2, 3, 4])
def test_upscale_nearest_centres_lr_pixels_where_a_samples_them(s: int) -> None:
    """A puts LR pixel i on HR pixel s·i: the LR panel shows it over HR pixels s·i − s//2 … (circular)."""
    rng = np.random.default_rng(s)
    lr = rng.uniform(size=(2, 5, 6))
    up = plots._upscale_nearest(lr, 5 * s, 6 * s)
    assert up.shape == (2, 5 * s, 6 * s)
    rep = np.repeat(np.repeat(lr, s, axis=1), s, axis=2)
    np.testing.assert_array_equal(up, np.roll(rep, (-(s // 2), -(s // 2)), axis=(1, 2)))
    np.testing.assert_array_equal(up[:, ::s, ::s], lr)  # HR pixel s·i shows LR pixel i
    # LR row i covers HR rows s·i − s//2 … s·i + s − s//2 − 1 (mod H): row 0's block wraps round the top
    H = 5 * s
    for i in range(5):
        for d in range(-(s // 2), s - s // 2):
            np.testing.assert_array_equal(up[:, (s * i + d) % H, ::s], lr[:, i])
    assert s // 2 == 0 or np.array_equal(up[:, -1, ::s], lr[:, 0])


def test_upscale_nearest_keeps_non_integer_ratios_in_range() -> None:
    lr = np.arange(7.0)[None, None, :].repeat(7, axis=1)
    up = plots._upscale_nearest(lr, 20, 20)
    assert up.shape == (1, 20, 20) and set(np.unique(up)) <= set(range(7))
    assert up[0, 0, 0] == 0 and up[0, 0, 3] == 1  # HR column 3 ≈ LR 1.05 → LR pixel 1
