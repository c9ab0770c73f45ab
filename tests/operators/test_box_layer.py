"""Tests for affsr.operators.box_layer: the box-constrained projection as a layer, and its exact gradient."""

from __future__ import annotations

import pytest
import torch

from affsr.operators.box_layer import project_box
from affsr.operators.downsampling import Downsampling


def _case(seed: int = 0, spread: float = 0.8):
    """An SR-like y0 (consistent but out of range in places) and its LR x = A of a real image."""
    g = torch.Generator().manual_seed(seed)
    op = Downsampling.gaussian(1.0, 9, 4)
    image = torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64)
    x = op(image)
    y0 = image + spread * torch.randn(image.shape, generator=g, dtype=torch.float64)
    y0 = y0 + op.pinv(x - op(y0))  # consistent, as the affine projection leaves it
    return op, x, y0


def test_forward_is_feasible_and_consistent():
    op, x, y0 = _case()
    assert (y0 < 0).any() and (y0 > 1).any()
    y = project_box(y0, x, op)
    assert float(y.min()) >= -1e-6 and float(y.max()) <= 1 + 1e-6
    assert float((op(y) - x).abs().max()) <= 1e-6


def test_the_gradient_is_the_projection_onto_the_active_face():
    """J g: zero on clamped pixels, in A's null space, J(J g) = J g, and ⟨J g, h⟩ = ⟨g, J h⟩."""
    op, x, y0 = _case(1)
    y0.requires_grad_(True)
    y = project_box(y0, x, op, tol=1e-12)
    g = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    h = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def vjp(v):
        (out,) = torch.autograd.grad(y, y0, v, retain_graph=True)
        return out

    jg, jh = vjp(g), vjp(h)
    clamped = (y.detach() <= 0) | (y.detach() >= 1)
    assert clamped.any() and float(jg[clamped].abs().max()) == 0.0
    assert float(op(jg).abs().max()) < 1e-8
    torch.testing.assert_close(vjp(jg), jg, atol=1e-8, rtol=0)
    assert float((jg * h).sum()) == pytest.approx(float((g * jh).sum()), abs=1e-8)


def test_the_gradient_matches_finite_differences():
    op, x, y0 = _case(4)
    direction = torch.randn(y0.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    weights = torch.randn(y0.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    y0 = y0.requires_grad_(True)
    loss = (project_box(y0, x, op, tol=1e-12) * weights).sum()
    (grad,) = torch.autograd.grad(loss, y0)
    eps = 1e-5  # small enough to keep the active set
    with torch.no_grad():
        plus = (project_box(y0 + eps * direction, x, op, tol=1e-12) * weights).sum()
        minus = (project_box(y0 - eps * direction, x, op, tol=1e-12) * weights).sum()
    assert float((grad * direction).sum()) == pytest.approx(float((plus - minus) / (2 * eps)), rel=1e-4)
