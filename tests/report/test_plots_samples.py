"""Tests for affsr.report.plots.samples: the sample grid and its LR display on A's sampling grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from png_checks import no_temp_files, read_png

from affsr.report.plots.samples import _upscale_nearest, sample_grid

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
    sample_grid(lr, hr, outs, out, title=f"C={c}")
    img = read_png(out)
    assert img.std() > 0.01  # not a blank canvas
    no_temp_files(out.parent)


def test_sample_grid_width_grows_with_columns(tmp_path: Path) -> None:
    lr, hr, outs = _images()
    p1, p3 = tmp_path / "one.png", tmp_path / "three.png"
    sample_grid(lr, hr, {"bicubic": outs["bicubic"]}, p1)
    sample_grid(lr, hr, outs, p3)
    w1, w3 = read_png(p1).shape[1], read_png(p3).shape[1]
    assert w3 > w1 * 1.3, (w1, w3)


def test_sample_grid_height_grows_with_rows_and_respects_max_rows(tmp_path: Path) -> None:
    lr, hr, outs = _images(n=8)
    p2, p6, p8 = tmp_path / "r2.png", tmp_path / "r6.png", tmp_path / "r8.png"
    sample_grid(lr[:2], hr[:2], {k: v[:2] for k, v in outs.items()}, p2)
    sample_grid(lr[:6], hr[:6], {k: v[:6] for k, v in outs.items()}, p6)
    sample_grid(lr, hr, outs, p8, max_rows=6)
    h2, h6, h8 = (read_png(p).shape[0] for p in (p2, p6, p8))
    assert h6 > h2
    assert h8 == h6  # capped at max_rows


def test_sample_grid_non_integer_scale(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    hr = rng.uniform(size=(2, 3, 20, 20))
    lr = rng.uniform(size=(2, 3, 7, 7))
    sample_grid(lr, hr, {"x": hr}, tmp_path / "g.png")
    read_png(tmp_path / "g.png")


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
        sample_grid(lr, hr, outs, out)
    assert not out.exists()
    no_temp_files(tmp_path)


# --------------------------------------------------------------------------- LR display on A's grid


@pytest.mark.parametrize("s", [2, 3, 4])
def test_upscale_nearest_centres_lr_pixels_where_a_samples_them(s: int) -> None:
    """A puts LR pixel i on HR pixel s·i: the LR panel shows it over HR pixels s·i − s//2 … (circular)."""
    rng = np.random.default_rng(s)
    lr = rng.uniform(size=(2, 5, 6))
    up = _upscale_nearest(lr, 5 * s, 6 * s)
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
    up = _upscale_nearest(lr, 20, 20)
    assert up.shape == (1, 20, 20) and set(np.unique(up)) <= set(range(7))
    assert up[0, 0, 0] == 0 and up[0, 0, 3] == 1  # HR column 3 ≈ LR 1.05 → LR pixel 1
