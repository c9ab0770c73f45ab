"""The projection onto C_δ = {|A y − x| ≤ δ, 0 ≤ y ≤ 1} against an independent solver (Clarabel, an
interior-point QP solver; the test extra), for the exact set (δ = 0) and the interval, and the proof of
emptiness where Clarabel reports the problem infeasible."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from affsr.operators.downsampling import Downsampling
from affsr.operators.interval_projection import certify_empty, solve_interval
from affsr.operators.kinds import build_operator
from affsr.config.data import OperatorConfig


def _matrix(op: Downsampling, height: int, width: int) -> sp.csc_matrix:
    """A as a sparse matrix (h·w × H·W), column by column from unit images."""
    eye = torch.eye(height * width, dtype=torch.float64).reshape(-1, 1, height, width)
    return sp.csc_matrix(op(eye).reshape(height * width, -1).numpy().T)


def _clarabel(op: Downsampling, y0: np.ndarray, x: np.ndarray, delta: float) -> tuple[np.ndarray, str]:
    """Clarabel's nearest point of C_δ to y0 (H, W), and its status."""
    import clarabel

    a = _matrix(op, *y0.shape)
    n, m = y0.size, a.shape[0]
    eye = sp.identity(n, format="csc")
    constraints = sp.vstack([a, -a, eye, -eye]).tocsc()
    bounds = np.concatenate([x.ravel() + delta, delta - x.ravel(), np.ones(n), np.zeros(n)])
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = 1e-12
    solver = clarabel.DefaultSolver(eye, -y0.ravel(), constraints, bounds,
                                    [clarabel.NonnegativeConeT(2 * m + 2 * n)], settings)
    solution = solver.solve()
    return np.asarray(solution.x).reshape(y0.shape), str(solution.status)


def _case(op: Downsampling, seed: int, size: int = 32, noise: float = 0.4) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random HR image's 8-bit LR x and a y0 = the affine projection of a noisy guess (values
    well outside [0, 1], as a network's output)."""
    generator = torch.Generator().manual_seed(seed)
    hr = torch.rand(1, 1, size, size, dtype=torch.float64, generator=generator)
    hr = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(hr, (1, 1, 1, 1), mode="circular"), 3, 1)
    x = torch.round(op(hr) * 255) / 255
    y0 = hr + noise * torch.randn(hr.shape, dtype=torch.float64, generator=generator)
    return y0 + op.pinv(x - op(y0)), x


OPERATORS = {
    "gaussian x4": lambda: Downsampling.gaussian(),
    "bicubic x2": lambda: build_operator(OperatorConfig(kind="bicubic", scale=2)),
    "asymmetric x3": lambda: Downsampling(torch.rand(5, 4, generator=torch.Generator().manual_seed(1)) + 0.1, 3, (0, 3)),
}


@pytest.mark.parametrize("name", OPERATORS)
@pytest.mark.parametrize("delta", [0.0, 0.25 / 255, 0.4995 / 255])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_clarabel(name, delta, seed):
    op = OPERATORS[name]()
    y0, x = _case(op, seed, size=24 if op.scale == 3 else 32)
    ours = solve_interval(op, y0, x, torch.tensor(delta))
    theirs, status = _clarabel(op, y0[0, 0].numpy(), x[0, 0].numpy(), delta)
    if status != "Solved":  # the exact set of a rounded LR may be empty: then we must prove it
        assert delta == 0 and "Infeasible" in status and bool(ours.empty[0]), status
        return
    assert bool(ours.converged[0]), float(ours.residual[0])
    assert np.abs(ours.y[0, 0].numpy() - theirs).max() <= 1e-6
    y = ours.y[0, 0]
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert float((op(ours.y) - x).abs().max()) <= delta + 1e-8


def _stars(op: Downsampling) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Black sky with three white HR pixels: their LR neighbours see ~5e-5, which rounds to 0, so the
    exact set of the 8-bit LR is empty (every pixel of a star's LR support is in a zero neighbour's
    support); the true sky lies in the interval set."""
    sky = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    sky[..., 8, 8] = sky[..., 16, 21] = sky[..., 25, 12] = 1.0
    x = torch.round(op(sky) * 255) / 255
    y0 = sky + 0.3 * torch.randn(sky.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    return sky, y0 + op.pinv(x - op(y0)), x


def test_the_empty_exact_set_of_a_rounded_image_is_proven_empty_and_the_interval_is_not():
    op = Downsampling.gaussian()
    sky, y0, x = _stars(op)
    exact = solve_interval(op, y0, x, torch.tensor(0.0))
    _, status = _clarabel(op, y0[0, 0].numpy(), x[0, 0].numpy(), 0.0)
    assert status == "PrimalInfeasible"
    assert bool(exact.empty[0]) and not bool(exact.converged[0])  # by the feasibility test: λ grows too slowly
    interval = solve_interval(op, y0, x, torch.tensor(0.25 / 255))
    theirs, status = _clarabel(op, y0[0, 0].numpy(), x[0, 0].numpy(), 0.25 / 255)
    assert status == "Solved" and bool(interval.converged[0]) and not bool(interval.empty[0])
    assert np.abs(interval.y[0, 0].numpy() - theirs).max() <= 1e-6
    assert float((op(sky) - x).abs().max()) <= 0.5 / 255  # the truth is in the interval set


def test_an_lr_image_no_image_makes_is_proven_empty_by_its_dual_in_ten_steps():
    """One white LR pixel among black ones: every HR pixel of its support is in a black neighbour's support."""
    op = Downsampling.gaussian()
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    x[..., 3, 3] = 1.0
    y0 = torch.rand(1, 1, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for delta in (0.0, 0.25 / 255):
        result = solve_interval(op, y0, x, torch.tensor(delta))
        assert bool(result.empty[0]) and result.iterations <= 10
        assert bool(certify_empty(op, result.lam, x, torch.tensor(delta))[0])
        assert _clarabel(op, y0[0, 0].numpy(), x[0, 0].numpy(), delta)[1] == "PrimalInfeasible"


def test_a_certificate_needs_a_real_contradiction():
    """certify_empty holds for the stars' λ but not for λ of a feasible problem nor for any random λ
    on a feasible one (a Farkas certificate cannot exist when the set has a point)."""
    op = Downsampling.gaussian()
    y0, x = _case(op, 0)
    solved = solve_interval(op, y0, x, torch.tensor(0.25 / 255))
    assert not bool(certify_empty(op, solved.lam, x, torch.tensor(0.25 / 255))[0])
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        d = 1e3 * torch.randn(x.shape, dtype=torch.float64, generator=generator)
        assert not bool(certify_empty(op, d, x, torch.tensor(0.25 / 255))[0])


def test_unconstrained_rows_are_left_alone_and_a_warm_start_lands_on_the_same_point():
    op = Downsampling.gaussian()
    y0, x = _case(op, 1)
    rows = torch.zeros(x.shape[-2:], dtype=torch.bool)
    rows[2:6, 1:7] = True
    part = solve_interval(op, y0, x, torch.tensor(0.25 / 255), rows=rows)
    assert bool(part.converged[0]) and float(part.lam[..., ~rows].abs().max()) == 0.0
    far = torch.ones(op.hr_shape(x.shape), dtype=torch.bool)  # pixels no constrained row sees keep clamp(y0)
    far[..., 2 * 4 - 4:6 * 4 + 5, 1 * 4 - 4:7 * 4 + 5] = False
    assert torch.equal(part.y[far], y0.clamp(0, 1)[far])
    cold = solve_interval(op, y0, x, torch.tensor(0.1 / 255))
    warm = solve_interval(op, y0, x, torch.tensor(0.1 / 255), lam=solve_interval(op, y0, x, torch.tensor(0.3 / 255)).lam)
    assert bool(cold.converged[0]) and bool(warm.converged[0])
    assert float((cold.y - warm.y).abs().max()) <= 1e-7
