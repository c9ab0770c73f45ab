"""The local solver (tiles of rows, solved where a row needs it) lands on the same point as one solve of
the whole image, for tilings that wrap around the periodic edge, leave a short last tile, or cover an
axis whole; it says when a set is empty; and the reflect boundary is solved whole."""

from __future__ import annotations

import pytest
import torch

from affsr.operators.downsampling import Downsampling
from affsr.operators.interval_projection import solve_interval
from affsr.operators.local_projection import _tiles, project_locally


def _photo_like(h: int, w: int, seed: int, op: Downsampling) -> tuple[torch.Tensor, torch.Tensor]:
    """(y0, x) for 3 channels: x an 8-bit LR of a smooth random image with dark and bright patches, y0 its
    affine-projected noisy guess (≈ 10 % of pixels outside [0, 1])."""
    generator = torch.Generator().manual_seed(seed)
    hr = torch.rand(1, 3, op.scale * h, op.scale * w, dtype=torch.float64, generator=generator)
    hr = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(hr, (2, 2, 2, 2), mode="circular"), 5, 1)
    hr = ((hr - 0.5) * 3 + 0.5).clamp(0, 1)  # saturated patches: pixels at 0 and 1, thin sets beside them
    x = torch.round(op(hr) * 255) / 255
    y0 = hr + 0.15 * torch.randn(hr.shape, dtype=torch.float64, generator=generator)
    return (y0 + op.pinv(x - op(y0)))[0], x[0]


@pytest.mark.parametrize("h,w,tile", [(40, 24, 8), (33, 17, 8), (12, 40, 16), (16, 16, 6)])
def test_equals_one_solve_of_the_whole_image(h, w, tile):
    op = Downsampling.gaussian()
    y0, x = _photo_like(h, w, h + w, op)
    delta = torch.full_like(x, 0.25 / 255)
    local = project_locally(op, y0, x, delta, tol=1e-10, tile=tile)
    whole = solve_interval(op, y0[:, None], x[:, None], delta[:, None], tol=1e-10, max_iter=200)
    assert local.converged and bool(whole.converged.all()) and not local.empty
    assert local.windows > 0 and local.rounds >= 1
    assert float((local.image - whole.y[:, 0]).abs().max()) <= 1e-7
    assert float((op(local.image[None]) - x[None]).abs().max()) <= 0.25 / 255 + 1e-9
    assert float(local.image.min()) >= 0 and float(local.image.max()) <= 1


def test_a_warm_start_with_tighter_rows_converges_to_the_cold_answer():
    op = Downsampling.gaussian()
    y0, x = _photo_like(24, 24, 5, op)
    wide = project_locally(op, y0, x, torch.full_like(x, 0.4 / 255), tol=1e-10, tile=8)
    tight = torch.full_like(x, 0.4 / 255)
    tight[:, 5:9, 3:20] = 0.1 / 255
    warm = project_locally(op, y0, x, tight, lam=wide.lam, tol=1e-10, tile=8)
    cold = project_locally(op, y0, x, tight, tol=1e-10, tile=8)
    assert warm.converged and cold.converged
    assert float((warm.image - cold.image).abs().max()) <= 1e-7


def test_nothing_to_do_when_clamping_already_fits():
    op = Downsampling.gaussian()
    hr = torch.rand(1, 1, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    x = op(hr)[0]
    result = project_locally(op, hr[0], x, torch.full_like(x, 0.0), tol=1e-9)
    assert result.converged and result.windows == 0 and torch.equal(result.image, hr[0])


def test_an_lr_image_no_image_makes_is_reported_empty():
    op = Downsampling.gaussian()
    x = torch.zeros(1, 40, 40, dtype=torch.float64)
    x[0, 20, 20] = 1.0
    y0 = torch.rand(1, 160, 160, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    result = project_locally(op, y0, x, torch.full_like(x, 0.25 / 255), tile=8)
    assert result.empty and not result.converged and "EMPTY" in result.summary()


def test_the_reflect_boundary_is_solved_whole():
    op = Downsampling(Downsampling.gaussian().kernel, 4, boundary="reflect")
    hr = torch.rand(1, 1, 48, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x = torch.round(op(hr) * 255) / 255
    y0 = hr + 0.3 * torch.randn(hr.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y0 = y0 + op.pinv(x - op(y0))
    result = project_locally(op, y0[0], x[0], torch.full_like(x[0], 0.25 / 255), tol=1e-9)
    assert result.converged and result.windows == 1
    assert float((op(result.image[None]) - x).abs().max()) <= 0.25 / 255 + 1e-8


@pytest.mark.parametrize("n,tile", [(64, 16), (70, 16), (48, 16), (17, 16), (20, 8)])
def test_tiles_of_one_colour_never_overlap(n, tile):
    """Windows solved together (one colour) share no LR row, margins included; every row is some tile's."""
    for shift in (0, tile // 2):
        windows, constrained, colours = _tiles(n, tile, 1, 1, shift)
        covered = set()
        for colour in set(colours):
            seen = set()
            for window, c in zip(windows, colours):
                if c == colour:
                    rows = set(window.tolist())
                    assert not rows & seen
                    seen |= rows
        for window in windows:
            covered |= set(window[constrained].tolist())
        assert covered == set(range(n))
