"""affsr.operators.box_projection: the nearest y with A y = x and 0 ≤ y ≤ 1 — feasible, consistent, idempotent, and
equal to an independent solver's answer (scipy) on small cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affsr.operators.box_projection import project_to_box
from affsr.operators.downsampling import Downsampling
from conftest import operator_of

TOL = 1e-8


def _case(op: Downsampling, hr: int, seed: int, channels: int = 1, spread: float = 0.4):
    """x = A of a random image in [0, 1]; y0 = a consistent but out-of-box guess (like an SR output)."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.rand(2, channels, hr, hr, generator=g, dtype=torch.float64)
    x = op(truth)
    y0 = truth + spread * torch.randn(truth.shape, generator=g, dtype=torch.float64)
    return y0 + op.pinv(x - op(y0)), x


@pytest.mark.parametrize("op", [Downsampling.gaussian(1.0, 9, 4), Downsampling.gaussian(1.0, 5, 2),
                                operator_of("box", scale=4)], ids=["gauss9x4", "gauss5x2", "box4"])
def test_result_is_feasible_and_consistent(op):
    y0, x = _case(op, 32, seed=0, channels=3)
    result = project_to_box(op, y0, x, tol=TOL)
    y = result.image
    assert result.converged and result.clipped_before > 0
    assert float(y.min()) >= -TOL and float(y.max()) <= 1 + TOL
    assert float((op(y) - x).abs().max()) <= TOL and result.residual <= TOL


def test_real_photo_with_8_bit_lr():
    """A photo's LR rounded to 8 bits (what `affsr downsample` writes) and a bicubic-like overshooting guess."""
    import skimage.data

    op = Downsampling.gaussian(1.0, 9, 4)
    hr = torch.from_numpy(skimage.data.camera()[:64, :64] / 255.0)[None, None]
    x = torch.round(op(hr) * 255) / 255
    y0 = op.pinv(x) * 1.3 - 0.15  # overshoots [0, 1]
    y0 = y0 + op.pinv(x - op(y0))
    result = project_to_box(op, y0, x, tol=1e-6)
    assert result.converged, result.summary()
    assert float(result.image.min()) >= 0 and float(result.image.max()) <= 1


def test_feasible_point_is_left_alone():
    op = Downsampling.gaussian(1.0, 9, 4)
    truth = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    result = project_to_box(op, truth, op(truth), tol=TOL)
    assert result.iterations == 0 and torch.equal(result.image, truth)
    again = project_to_box(op, *(_ := _case(op, 16, seed=2))).image
    assert float((project_to_box(op, again, op(again), tol=TOL).image - again).abs().max()) < 1e-12


def test_unreachable_tolerance_is_reported_not_hidden():
    op = Downsampling.gaussian(1.0, 9, 4)
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    x[..., 0, 0] = 1.0  # one white LR pixel among black ones: no image in [0, 1] blurs to this
    result = project_to_box(op, op.pinv(x), x, tol=1e-6, max_iter=5)
    assert not result.converged and "NOT converged" in result.summary()


def _dense(op: Downsampling, hr: int) -> np.ndarray:
    eye = torch.eye(hr * hr, dtype=torch.float64).reshape(-1, 1, hr, hr)
    return op(eye).reshape(hr * hr, -1).numpy().T  # (n_lr, n_hr)


@pytest.mark.parametrize("scale,size", [(2, 5), (4, 7)])  # HR 8×8 must cover the kernel
def test_equals_scipy_nearest_feasible_point(scale, size):
    from scipy.optimize import Bounds, minimize

    op = Downsampling.gaussian(1.0, size, scale)
    y0, x = _case(op, 8, seed=3 + scale)
    y0, x = y0[:1], x[:1]
    ours = project_to_box(op, y0, x, tol=1e-10).image.numpy().ravel()
    A, target, start = _dense(op, 8), x.numpy().ravel(), y0.numpy().ravel()
    ref = minimize(lambda y: 0.5 * np.sum((y - start) ** 2), np.clip(start, 0, 1), jac=lambda y: y - start,
                   method="SLSQP", bounds=Bounds(0, 1), options={"ftol": 1e-14, "maxiter": 1000},
                   constraints=[{"type": "eq", "fun": lambda y: A @ y - target, "jac": lambda y: A}])
    assert ref.success, ref.message
    assert np.abs(A @ ref.x - target).max() < 1e-6
    assert np.abs(ours - ref.x).max() < 1e-5


def test_dykstra_reaches_the_same_point():
    op = Downsampling.gaussian(1.0, 5, 2)
    y0, x = _case(op, 8, seed=7)
    newton = project_to_box(op, y0, x, tol=1e-10)
    dykstra = project_to_box(op, y0, x, tol=1e-9, method="dykstra", max_iter=20000)
    assert dykstra.converged
    assert float((newton.image - dykstra.image).abs().max()) < 1e-4
