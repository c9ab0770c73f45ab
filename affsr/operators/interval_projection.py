"""The nearest valid image whose downsampling is within δ of x: projection onto
C_δ = {y : |A y − x| ≤ δ row by row, 0 ≤ y ≤ 1}, with a proof when C_δ is empty.

Why an interval and not A y = x: an 8-bit LR image is A·y *rounded* to 1/255, and such an x need not be
A of any image in [0, 1] (on 8-bit photo crops Clarabel returns a primal-infeasibility certificate for
the exact set; our Newton solver then chased a point that does not exist for minutes). What a user's
file needs is weaker and always satisfiable when x was made by A: the saved image, downsampled and
rounded to x's bit depth, gives back x — every row within half a quantisation step. With δ = 0 this is
the exact set, the one float inputs get.

Problem, for y0 (e.g. the affine-projected network output) and per-row half-widths δ ≥ 0:

    min ½‖y − y0‖² + ½ε‖e‖²   s.t.   A y − x = e,  |e| ≤ δ,  0 ≤ y ≤ 1.

The small ε (:data:`EPSILON`) keeps the dual smooth (with ε = 0 it has a |λ|₁ kink); it pulls the
answer by about ε·δ·(column sum of A) per pixel (1e-6 · 2e-3 / 16 ≈ 1e-10 at ×4 and 8 bits), far
below the 1e-6 the tests hold us to against Clarabel. Dual, with a multiplier λ per constrained row:

    y(λ) = clamp(y0 + Aᵀλ, 0, 1),   e(λ) = clamp(−λ/ε, −δ, δ),
    ψ(λ) = ½‖v‖² − ½‖v − y‖² − λᵀx − ½ε‖e‖² − λᵀe,   v = y0 + Aᵀλ,   ∇ψ = A y − x − e,

convex and piecewise quadratic, minimised by semismooth Newton: the generalised Hessian is
A D Aᵀ + D_e/ε (D = 1 where y0 + Aᵀλ is inside the box, D_e = 1 where e is inside its interval), solved
by CG with its diagonal as preconditioner (rows inside their interval are ruled by the 1/ε term, so the
diagonal is close to exact there), and an Armijo line search per image on ψ. Every iterate is in the box;
at ∇ψ = 0 the KKT conditions hold and y is the nearest point of C_δ (to the ε above).

``rows`` restricts the constraints to a subset of LR pixels (λ = 0 elsewhere): the local solver
(:mod:`affsr.operators.local_projection`) solves windows cut out of a large image, whose border rows
are not constrained (their kernel would wrap around the window).

Empty sets. If C_δ is empty, ψ falls without bound along some direction d, and d proves it (Farkas):
for y ∈ C_δ, dᵀA y ≥ dᵀx − δᵀ|d|, while for y in the box dᵀA y ≤ Σ max(0, Aᵀd). So

    dᵀx − δᵀ|d| > Σ_j max(0, (Aᵀd)_j)   ⇒   C_δ = ∅,

checked with d = the solver's λ every :data:`CERTIFY_EVERY` steps (:func:`certify_empty`): a set that is
clearly empty (an LR image not made by A) is proven so in 10 steps. A set empty by only ~1e-4 (the
exact set of an 8-bit LR of stars on black: their neighbours' 5e-5 round to 0) makes ψ fall so slowly
that λ is no certificate after hundreds of steps; for an image still unconverged at the end, a linear
program (HiGHS, through scipy) tests feasibility explicitly (:func:`infeasible`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from affsr.operators.downsampling import Downsampling
from affsr.operators.linear_solvers import conjugate_gradients
from affsr.operators.polyphase import Polyphase, fast_operator, squares_operator

__all__ = ["IntervalSolve", "solve_interval", "certify_empty", "EPSILON"]

#: Weight of ½ε‖A y − x‖² in the objective: keeps the dual differentiable (module docstring).
EPSILON = 1e-6
#: Pixels held at a bound still get this weight in the Newton system, so that A D Aᵀ stays invertible
#: where a whole LR pixel's support is clamped. Measured (Newton steps to 1e-9; stars on black, interval
#: set / a 128² photo window): 1e-2: >200 / 23, 1e-3 (box_projection's): >200 / 14, 1e-4: 117 / 7,
#: 1e-6: 32 / 8, 1e-7: 31 / 7, 1e-8: 31 / 7, 1e-9: >200 (singular) / 8. The thin 16-bit sets favour the
#: small end: one channel of astronaut, 16-bit LR 128² → 512², the whole local solve: 1e-4: 36 s, not
#: converged; 1e-6: 21 s; 1e-8: 9.2 s.
FLOOR = 1e-8
#: A cold start puts λ of the rows clamping leaves outside their interval this far past the kink |λ| = εδ,
#: so that their first Newton step already sees the bound (from λ = 0 it takes ε-sized steps).
KINK = 1.01
#: Newton steps between two tests of whether λ already proves the set empty (:func:`certify_empty`).
CERTIFY_EVERY = 10


@dataclass(frozen=True)
class IntervalSolve:
    """One batch solved by :func:`solve_interval`: y (B, C, H, W) in [0, 1]; lam (B, C, h, w), zero on
    unconstrained rows; residual (B,) max |∇ψ| (1 = white); converged (B,) residual ≤ tol; empty (B,)
    proven empty by :func:`certify_empty`; iterations (Newton steps of the slowest image) and CG steps."""

    y: Tensor
    lam: Tensor
    residual: Tensor
    converged: Tensor
    empty: Tensor
    iterations: int
    cg_steps: int


def solve_interval(op, y0: Tensor, x: Tensor, delta: Tensor, rows: Tensor | None = None,
                   lam: Tensor | None = None, tol: float = 1e-9, max_iter: int = 80,
                   cg_iter: int = 300, epsilon: float = EPSILON, squares=None) -> IntervalSolve:
    """Nearest point of C_δ to y0 for every image of a batch (module docstring), in float64.

    op: a :class:`Downsampling` or its :class:`~affsr.operators.polyphase.Polyphase` form (and
    ``squares``, its squared-kernel operator, when calling often); y0: (B, C, H, W); x, delta:
    (B, C, h, w) with delta ≥ 0 (0 = the exact set A y = x); rows: bool, broadcastable to x, the
    constrained rows (default all); lam: a warm start (e.g. from a previous solve with wider δ; rows at 0
    there that clamping y0 leaves outside start past the kink). Stops per image when max |∇ψ| ≤ tol —
    every constrained row within δ + tol and the KKT conditions met — or when λ proves the set empty,
    or after ``max_iter`` Newton steps. Finished images leave the batch, so a few hard images cost only
    their own work. The boundary is ``op``'s (windows cut from an image: see ``rows``)."""
    op = fast_operator(op)
    squares = squares or squares_operator(op)
    y0, x = y0.detach().double(), x.detach().double()
    delta = delta.double().expand_as(x)
    mask = torch.ones_like(x) if rows is None else rows.to(x.dtype).expand_as(x)
    lam = torch.zeros_like(x) if lam is None else lam.double().clone()
    # rows at λ = 0 that clamping y0 leaves outside their interval start just past the kink of e(λ)
    outside = op(y0.clamp(0.0, 1.0)) - x
    lam = torch.where((lam == 0) & (outside.abs() > delta), -KINK * epsilon * delta * outside.sign(), lam) * mask
    dims = tuple(range(1, x.ndim))
    per_image = (-1,) + (1,) * (x.ndim - 1)

    def state(i: Tensor, lam: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """For the images ``i``: ψ per image, v, y, e."""
        v = y0[i] + op.adjoint(lam)
        y = v.clamp(0.0, 1.0)
        e = torch.clamp(-lam / epsilon, -delta[i], delta[i])
        value = (0.5 * (v.square().sum(dims) - (v - y).square().sum(dims)) - (lam * x[i]).sum(dims)
                 - (0.5 * epsilon * e.square() + lam * e).sum(dims))
        return value, v, y, e

    everyone = torch.arange(x.shape[0], device=x.device)
    value, v, y, e = state(everyone, lam)
    r_max = torch.full((x.shape[0],), float("inf"), dtype=x.dtype, device=x.device)
    empty = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    live = everyone
    cg_steps = iterations = 0
    for iterations in range(max_iter + 1):
        m, xs, ds = mask[live], x[live], delta[live]
        lam_l, v_l = lam[live], v[live]
        r = m * (xs - op(y[live]) + e[live])  # −∇ψ
        r_max[live] = r.abs().amax(dims)
        finished = r_max[live] <= tol
        if iterations % CERTIFY_EVERY == CERTIFY_EVERY - 1:
            proven = ~finished & certify_empty(op, lam_l, xs, ds)
            empty[live], finished = proven, finished | proven
        if bool(finished.all()) or iterations == max_iter:
            break
        keep = ~finished
        live, m, xs, ds, lam_l, v_l, r = live[keep], m[keep], xs[keep], ds[keep], lam_l[keep], v_l[keep], r[keep]
        inside = ((v_l > 0.0) & (v_l < 1.0)).to(x.dtype).clamp(min=FLOOR)
        loose = ((-lam_l / epsilon > -ds) & (-lam_l / epsilon < ds)).to(x.dtype) / epsilon
        diagonal = m * squares(inside) + loose + (1.0 - m)

        def hessian(d: Tensor) -> Tensor:
            return m * op(inside * op.adjoint(m * d)) + loose * d + (1.0 - m) * d

        # inexact Newton: CG to a relative accuracy that tightens as r shrinks
        rm = r_max[live]
        step, n, _ = conjugate_gradients(hessian, lambda g: g / diagonal, r, cg_iter,
                                         (rm.clamp(max=0.01).sqrt() * rm).clamp(min=tol * 1e-2))
        cg_steps += n
        step = step * m
        beyond = lam_l.abs() > epsilon * ds  # rows held at an end of their interval
        t = torch.ones(len(live), dtype=x.dtype, device=x.device)
        trying = torch.arange(len(live), device=x.device)
        while len(trying):  # Armijo per image, evaluated only for the images still backtracking
            new = lam_l[trying] + t[trying].view(per_image) * step[trying]
            # a row held at one end whose step would cross to the other stops at λ = 0 (inside its interval):
            # Newton's model of a held row knows nothing of the kink, and crossing it made rows flip forever
            new = torch.where(beyond[trying] & (new * lam_l[trying] < 0), 0.0, new)
            images = live[trying]
            new_value, new_v, new_y, new_e = state(images, new)
            accept = ((new_value <= value[images] - 1e-4 * (r[trying] * (new - lam_l[trying])).sum(dims))
                      | (t[trying] < 1e-3))  # 1e-3: the round-off floor of t
            done_now = images[accept]
            lam[done_now], value[done_now], v[done_now], y[done_now], e[done_now] = (
                new[accept], new_value[accept], new_v[accept], new_y[accept], new_e[accept])
            trying = trying[~accept]
            t[trying] = 0.5 * t[trying]
    converged = r_max <= tol
    for i in torch.nonzero(~converged & ~empty).flatten().tolist():  # λ proved nothing: ask a linear program
        empty[i] = infeasible(op, x[i], delta[i], mask[i] > 0)
    return IntervalSolve(y, lam, r_max, converged, ~converged & empty, iterations, cg_steps)


def sparse_operator(op, rows: Tensor, height: int, width: int):
    """The constrained rows of A (circular boundary) as a scipy CSR matrix (rows × H·W pixels), built from
    the kernel's taps: row (i, j) reads pixel ((s·i + a − oy) mod H, (s·j + b − ox) mod W) with weight
    kernel[a, b]. ``rows``: (h, w) bool."""
    import numpy as np
    import scipy.sparse as sp

    s, (oy, ox) = op.scale, op.origin
    kernel = op.op.kernel if isinstance(op, Polyphase) else op.kernel
    i, j = np.nonzero(rows.cpu().numpy())
    a, b = np.nonzero(np.ones(kernel.shape, dtype=bool))
    pixel_rows = (s * i[:, None] + a[None, :] - oy) % height
    pixel_cols = (s * j[:, None] + b[None, :] - ox) % width
    weights = np.broadcast_to(kernel.numpy()[a, b][None, :], pixel_rows.shape)
    row_index = np.broadcast_to(np.arange(len(i))[:, None], pixel_rows.shape)
    return sp.csr_matrix((weights.ravel(), (row_index.ravel(), (pixel_rows * width + pixel_cols).ravel())),
                         shape=(len(i), height * width))


def infeasible(op, x: Tensor, delta: Tensor, rows: Tensor) -> bool:
    """True when a linear program (HiGHS, through scipy) finds no y in [0, 1] with |A y − x| ≤ δ on the
    constrained rows — an explicit feasibility test for when the dual has not diverged clearly enough to
    give a certificate (sets that are empty by less than ~1e-4, e.g. the exact set of an 8-bit LR image
    of stars on black). x, delta: (C, h, w); rows: (C, h, w) bool. Circular boundary only (else False)."""
    import numpy as np
    import scipy.sparse as sp
    from scipy.optimize import linprog

    if getattr(op, "boundary", "circular") != "circular":
        return False
    height, width = x.shape[-2] * op.scale, x.shape[-1] * op.scale
    for c in range(x.shape[0]):
        a = sparse_operator(op, rows[c], height, width)
        if a.shape[0] == 0:
            continue
        keep = rows[c].cpu().numpy()
        x_c, d_c = x[c].cpu().numpy()[keep], delta[c].cpu().numpy()[keep]
        result = linprog(np.zeros(height * width), A_ub=sp.vstack([a, -a]), b_ub=np.concatenate([x_c + d_c, d_c - x_c]),
                         bounds=(0, 1), method="highs")
        if result.status == 2:  # infeasible
            return True
    return False


def certify_empty(op: Downsampling, d: Tensor, x: Tensor, delta: Tensor) -> Tensor:
    """(B,) bool: True where ``d`` (B, C, h, w) proves C_δ empty (module docstring), with a margin of
    1e-9 relative to the terms' size for round-off."""
    dims = tuple(range(1, x.ndim))
    d, x = d.double(), x.double()
    lower = (d * x).sum(dims) - (delta.double().expand_as(x) * d.abs()).sum(dims)
    upper = op.adjoint(d).clamp(min=0).sum(dims)
    size = (d.abs() * (x.abs() + 1)).sum(dims)
    return lower > upper + 1e-9 * size
