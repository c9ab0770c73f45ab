"""The box-constrained projection on thin sets: near-black LR pixels beside bright ones, where the
semismooth Newton method stalls and ``auto`` hands the image to the interior-point method
(affsr.operators.box_interior_point). Checked: Newton alone really stalls there, ``auto`` converges, stays strictly in
the box, equals an independent solver's nearest point (scipy SLSQP), and its active set gives the box
layer a gradient with the properties of the projection onto the active face."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affsr.operators.box_interior_point import interior_point
from affsr.operators.box_layer import project_box
from affsr.operators.box_projection import NEWTON_STEPS, project_to_box
from affsr.operators.downsampling import Downsampling

OP = Downsampling.gaussian(1.0, 9, 4)


def thin_case(seed: int, side: int = 4, images: int = 1, channels: int = 1):
    """x = A hr for an hr of 4×4 blocks, black (with a 1/255 trace on 5 % of the pixels) or bright (some
    saturated at 1), like the natural patches that stall Newton; y0 = hr + noise, made consistent."""
    g = torch.Generator().manual_seed(seed)
    shape = (images, channels, side, side)
    bright = 0.7 + 0.3 * torch.rand(shape, generator=g, dtype=torch.float64)
    blocks = (torch.rand(shape, generator=g) < 0.5).double() * bright
    hr = torch.nn.functional.interpolate(blocks, scale_factor=4, mode="nearest")
    trace = (torch.rand(hr.shape, generator=g) < 0.05).double() / 255
    hr = torch.where(hr == 0, trace, hr)
    hr = torch.where(hr > 0.97, torch.ones_like(hr), hr)
    x = OP(hr)
    y0 = hr + 0.3 * torch.randn(hr.shape, generator=g, dtype=torch.float64)
    return y0 + OP.pinv(x - OP(y0)), x


def _slsqp(y0: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    from scipy.optimize import Bounds, minimize

    side = y0.shape[-1]
    eye = torch.eye(side * side, dtype=torch.float64).reshape(-1, 1, side, side)
    A = OP(eye).reshape(side * side, -1).numpy().T
    start, target = y0.numpy().ravel(), x.numpy().ravel()
    ref = minimize(lambda y: 0.5 * np.sum((y - start) ** 2), np.clip(start, 0, 1), jac=lambda y: y - start,
                   method="SLSQP", bounds=Bounds(0, 1), options={"ftol": 1e-14, "maxiter": 1000},
                   constraints=[{"type": "eq", "fun": lambda y: A @ y - target, "jac": lambda y: A}])
    assert ref.success and np.abs(A @ ref.x - target).max() < 1e-12, ref.message
    return ref.x


@pytest.mark.parametrize("seed", [2, 9])
def test_auto_finishes_what_newton_cannot_and_finds_the_nearest_point(seed):
    y0, x = thin_case(seed)
    newton = project_to_box(OP, y0, x, tol=1e-10, method="newton", max_iter=50)
    assert not newton.converged and newton.residual > 1e-6  # the stall this solver exists for
    auto = project_to_box(OP, y0, x, tol=1e-10, max_iter=100)
    assert auto.converged and auto.fallback == 1 and "interior-point" in auto.summary()
    y = auto.image.numpy().ravel()
    assert y.min() > 0 and y.max() <= 1  # strictly inside from below: an interior point
    ref = _slsqp(y0, x)
    start = y0.numpy().ravel()
    assert np.linalg.norm(y - start) == pytest.approx(np.linalg.norm(ref - start), rel=1e-8)
    assert np.abs(y - ref).max() < 1e-5


def test_only_the_stalled_images_go_to_the_interior_point_method():
    easy = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    hard_y0, hard_x = thin_case(5, images=2, channels=3)
    y0 = torch.cat([easy + 0.2, hard_y0])
    x = torch.cat([OP(easy), hard_x])
    alone = project_to_box(OP, y0[:2], x[:2], tol=1e-8)
    stalls = [not project_to_box(OP, y0[i:i + 1], x[i:i + 1], tol=1e-8, method="newton",
                                 max_iter=NEWTON_STEPS).converged for i in (2, 3)]
    mixed = project_to_box(OP, y0, x, tol=1e-8, max_iter=100)
    assert alone.fallback == 0 and any(stalls) and mixed.converged and mixed.fallback == sum(stalls)
    # per-image CG and line search: the easy images' iterates do not depend on their batch mates
    assert torch.equal(mixed.image[:2], alone.image) and torch.equal(mixed.free[:2], alone.free)
    assert float((OP(mixed.image) - x).abs().max()) <= 1e-8


def test_interior_point_matches_newton_and_its_active_set_where_both_converge():
    g = torch.Generator().manual_seed(3)
    truth = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64)
    y0 = truth + 0.5 * torch.randn(truth.shape, generator=g, dtype=torch.float64)
    x = OP(truth)
    newton = project_to_box(OP, y0, x, tol=1e-10, method="newton")
    interior = project_to_box(OP, y0, x, tol=1e-10, method="interior", max_iter=100)
    assert newton.converged and interior.converged
    # both feasible to 1e-10, so strong convexity of f = ½‖y − y0‖² bounds the distance between them by
    # the interior point's excess objective, itself at most the duality gap 2nμ of its stopping test
    f = lambda y: 0.5 * float((y - y0).square().sum())  # noqa: E731
    excess = f(interior.image) - f(newton.image)
    assert -1e-9 <= excess <= 2 * y0.numel() * 1e-10
    assert float((interior.image - newton.image).norm()) <= (2 * max(excess, 0)) ** 0.5 + 1e-8
    assert torch.equal(newton.free, interior.free)


def test_near_white_pixels_do_not_turn_into_nan():
    """1 − y rounds to 0 for y within 1e-16 of 1; the upper slack is its own variable for that reason."""
    y0, x = thin_case(11, images=2, channels=3)
    y, free, _, _, optimal = interior_point(OP, 1 - y0, OP(torch.ones_like(y0)) - x, tol=1e-10, max_iter=100)
    assert optimal and torch.isfinite(y).all() and float(y.max()) <= 1 and float(y.min()) > 0
    assert float((OP(y) - (OP(torch.ones_like(y0)) - x)).abs().max()) <= 1e-10
    assert not free.all()


def test_the_layer_gradient_on_a_thin_set_is_the_projection_onto_its_active_face():
    y0, x = thin_case(9, images=2, channels=3)
    y0.requires_grad_(True)
    y = project_box(y0, x, OP, tol=1e-9)
    g = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (jg,) = torch.autograd.grad(y, y0, g, retain_graph=True)
    (jjg,) = torch.autograd.grad(y, y0, jg)
    held = (y.detach() < 1e-6) | (y.detach() > 1 - 1e-6)
    assert held.any() and float(jg[held].abs().max()) == 0.0
    assert float(OP(jg).abs().max()) < 1e-8
    torch.testing.assert_close(jjg, jg, atol=1e-8, rtol=0)
