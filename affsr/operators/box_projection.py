"""The nearest image that is both consistent and a valid image: projection onto {y : A y = x, 0 ≤ y ≤ 1}.

Why: the affine projection ŷ = A⁺x + (I − A⁺A) f makes A ŷ = x exactly, but nothing keeps ŷ in [0, 1]
(measured on `affsr upscale` outputs: −0.36 … 1.49, 8 % of a PNG's pixels clipped). Clipping then breaks the
consistency the projection bought (downsample(upscale(x)) off by up to 37 grey levels). The fix is the
Euclidean projection of ŷ onto the intersection C = {y : A y = x} ∩ [0, 1]^n, convex and non-empty
whenever x is A of some image.

Method: semismooth Newton on the dual (a "projection onto a polytope" classic). The Lagrangian of
min ½‖y − y0‖² s.t. A y = x, 0 ≤ y ≤ 1 gives, for a multiplier λ on the LR grid,

    y(λ) = clamp(y0 + Aᵀλ, 0, 1),        ψ(λ) = ½‖v‖² − ½‖v − clamp(v)‖² − λᵀx,   v = y0 + Aᵀλ,

with ψ convex, differentiable, ∇ψ = A y(λ) − x and generalised Hessian A D Aᵀ (D = 1 where y0 + Aᵀλ lies
strictly inside the box, 0 where it is clamped). Every iterate is therefore *exactly* in the box; only
the consistency residual r = x − A y(λ) has to be driven to zero. Each Newton step solves A D Aᵀ Δ = r with
conjugate gradients preconditioned by (A Aᵀ)⁻¹ (diagonal in the LR grid's DFT, built from A's impulse
response), which is nearly exact when few pixels are clamped; an Armijo line search on ψ makes it global.
At a zero of ∇ψ the KKT conditions hold, so y(λ) is the nearest point of C to y0. Line search and CG
run per image (each image is its own block of the system), so one hard image does not slow the others.

Where Newton stalls. Beside near-black LR pixels (x ≈ 1e-5 over a support that is black but for a trace)
next to bright ones, C is very thin: the dual optimum λ* has entries of ~3e4, and Newton walks there a
few active-set changes per step (measured: 50 steps left max |A y − x| at 1e-5 … 2e-4; even a
professional interior-point solver, Clarabel, reports only "AlmostSolved" on such a patch). ``auto``, the
default, therefore gives Newton :data:`NEWTON_STEPS` steps and hands every image still above ``tol`` to
the primal-dual interior-point method of :mod:`affsr.operators.box_interior_point`, which follows the central path
instead of the active set.

Measured (CPU, 2 threads, float64, one 256×256 LR photo → 1024×1024, operator Gaussian σ=1, 9×9, ×4,
tol 1e-6): see :data:`MEASURED`. Dykstra's alternating projections (P_aff(y) = y + A⁺(x − A y) and the
clamp), kept here as ``method="dykstra"`` for reference, need hundreds to thousands of iterations for
the same tolerance (also in :data:`MEASURED`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from affsr.operators.box_interior_point import interior_point
from affsr.operators.downsampling import Downsampling
from affsr.operators.linear_solvers import conjugate_gradients, gram_preconditioner

__all__ = ["BoxProjection", "project_to_box", "METHODS", "MEASURED"]

#: ``method`` of :func:`project_to_box`: ``auto`` = Newton, then the interior-point method for the images
#: it leaves unconverged; or one solver alone.
METHODS = ("auto", "newton", "interior", "dykstra")
#: Newton steps ``auto`` gives an image before handing it to the interior-point method. On the study's
#: test patches (benchmarks/box_solvers.py) the grass and faces batches converged within 4 steps, the
#: natural ones that converge at all within 11; more only delays the hand-over (:data:`MEASURED`).
NEWTON_STEPS = 15

#: Measured on CPU (float64). Before ``auto`` existed, x = 8-bit A of a photo, y0 = the affgan outputs, 2 threads:
MEASURED = """
grass affgan, camera HR 256², tol 1e-6: Newton 4 its (16 CG) 0.05 s; Dykstra 59 sweeps 0.14 s (189 px clipped)
faces affgan, moon HR 256², tol 1e-6: Newton 4 its (15 CG) 0.04 s; Dykstra 45 sweeps 0.10 s (92 px clipped)
natural affgan, astronaut HR 256² (LR = 8-bit A y): Newton NOT converged in 50 its, residual stalls at 3.5e-4 (7.8 s)
natural affgan, retina HR 1024² (3 channels), tol 1e-6: Newton NOT converged in 50 its (1522 CG), 1.35e-4, 234 s
Dykstra after 200 sweeps on a 256² grey case: 7.8e-4 (Newton: 3e-7 in 7 its).
Round trip (scripts/round_trip.py's measure) on retina 1024² colour, natural affgan / affmse: max |Δ| 0 grey
levels with Newton's projection (not converged to 1e-2/255, 250 / 267 s), 17 without it.
Tried on the Newton stall, none adopted: fixing the supports of saturated rows (facial reduction; no gain,
and infeasible on 8-bit LR: residual 0.88), Levenberg–Marquardt μ I instead of the 1e-3 floor on D (five
schedules; a constant tiny μ reached 1e-7 but in 60-110 steps), a row-scaled preconditioner (fewer CG steps,
same stall), an exact line search, bound tightening from x (y_j ≤ x_i / a_ij), a stall exit, a jump to the
first breakpoint on rows whose support is all clamped. What the stall is: λ* ~ 3.4e4 on a 32² patch.
Tried on the interior-point method, not adopted: a warm start from Newton's λ (150–164 steps on the 128
natural patches against 150 cold), and a per-pixel complementarity test (see affsr.operators.box_interior_point).
With ``auto`` (benchmarks/box_solvers.py, 1 thread, the study's 128 test patches in batches of 16, float32
LR as the study feeds it, y0 = the affine-projected outputs of affgan / affmse / affll, tol 1e-6):
grass and faces: every batch converged by Newton alone in ≤ 4 steps, 0.01-0.03 s for all 128 patches.
natural: auto 8/8 batches converged (worst 9.0e-7), 16 of 128 patches handed to the interior-point method,
6.5-6.9 s; Newton alone with 100 steps: 2/8 converged, worst 1.9e-4, 27-28 s.
Against Clarabel (an interior-point QP solver, tol 1e-12) on three stalling natural patches, auto at tol
1e-9: distance to y0 +1e-7 / +3e-6 / +7e-5 relative to Clarabel's, whose own answers miss A y = x by
1e-15 / 9e-9 / 1.8e-7 (status Solved / AlmostSolved / AlmostSolved) — on a set this thin, a 1e-7 miss buys
that much distance. Against scipy SLSQP on 16² stalling cases (tests/test_box_interior.py): equal
distance to 1e-8 relative.
At photo size the interior-point method is too slow on a CPU: retina 1024² colour (natural affgan, 8-bit
LR, tol 0.01/255, 2 threads) was stopped after 13 min; 3 of its steps took 5 s of CG, and its CG steps
per system grow as μ falls. `affsr upscale` ran Newton alone (above: 250 s, round trip within 0 grey
levels). It now solves the set its saved file needs instead — |A y − x| ≤ δ, which an 8-bit x always
allows, where A y = x often has no solution — tile by tile (affsr.operators.local_projection: retina
1024² in seconds); this module serves the training layer (box_layer), whose x = A·hr is exact.
"""


@dataclass(frozen=True)
class BoxProjection:
    """Result of :func:`project_to_box`.

    image: (B, C, H, W) float64, in [0, 1] up to ``box_violation``; free: (B, C, H, W) bool, True where no
    bound holds the pixel at the solution (the active set the box layer's gradient needs); iterations:
    outer iterations (Newton steps, plus interior-point steps where ``fallback`` > 0, or Dykstra sweeps);
    cg_steps: total CG steps (0 for Dykstra); residual: max |A y − x| (units of the image, i.e. 1 = white);
    box_violation: max distance of y outside [0, 1]; converged: both ≤ tol; clipped_before: pixels of y0
    outside [0, 1] (what clipping would have changed); fallback: images the interior-point method finished
    (``auto``); seconds: wall time.
    """

    image: Tensor
    free: Tensor
    iterations: int
    cg_steps: int
    residual: float
    box_violation: float
    converged: bool
    clipped_before: int
    fallback: int
    seconds: float
    tol: float

    def summary(self) -> str:
        state = "converged" if self.converged else f"NOT converged to tol {self.tol:g}"
        handed = f", {self.fallback} image(s) by the interior-point method" if self.fallback else ""
        return (f"box projection {state} in {self.iterations} iterations ({self.cg_steps} CG steps{handed}, "
                f"{self.seconds:.2f} s): max |Ay − x| = {self.residual:.2e}, box violation = {self.box_violation:.1e}")


def _violation(y: Tensor) -> float:
    return float(torch.maximum(-y, y - 1.0).clamp(min=0).max()) if y.numel() else 0.0


def project_to_box(op: Downsampling, y0: Tensor, x: Tensor, tol: float = 1e-6, max_iter: int = 50,
                   method: str = "auto", cg_iter: int = 100) -> BoxProjection:
    """Nearest point of {y : A y = x, 0 ≤ y ≤ 1} to y0, to tolerance ``tol`` (max |A y − x| and box violation).

    y0: (B, C, H, W) any float; x: (B, C, H/s, W/s) in [0, 1]; computed in float64 on y0's device.
    ``method`` (:data:`METHODS`): "auto" (default) runs at most :data:`NEWTON_STEPS` Newton steps on the
    batch and gives every image still above ``tol`` to the interior-point method (:mod:`affsr.operators.box_interior_point`,
    up to ``max_iter`` steps); "newton" and "interior" run one solver for up to ``max_iter`` steps;
    "dykstra" alternates projections (``max_iter`` counts sweeps — give it thousands). Never fails
    silently: ``converged`` is False when the budget ran out, e.g. because x is not A of any image in
    [0, 1] (the set is then empty).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    start = time.perf_counter()
    y0, x = y0.detach().double(), x.detach().double().to(y0.device)
    clipped = int(((y0 < 0) | (y0 > 1)).sum())
    fallback = 0
    optimal = True  # the interior-point method's own optimality test; the others stop on feasibility
    if method == "interior":
        y, free, its, cgs, optimal = interior_point(op, y0, x, tol, max_iter)
    elif method == "dykstra":
        y, its, cgs = _dykstra(op, y0, x, tol, max_iter)
        free = (y > 0) & (y < 1)
    else:
        newton_steps = min(max_iter, NEWTON_STEPS) if method == "auto" else max_iter
        y, its, cgs = _newton(op, y0, x, tol, newton_steps, cg_iter)
        free = (y > 0) & (y < 1)
        stalled = torch.nonzero((op(y) - x).abs().flatten(1).amax(1) > tol).flatten()
        if method == "auto" and len(stalled):
            y, free = y.clone(), free.clone()
            y[stalled], free[stalled], more, more_cg, optimal = interior_point(op, y0[stalled], x[stalled], tol,
                                                                               max_iter)
            its, cgs, fallback = its + more, cgs + more_cg, len(stalled)
    residual = float((op(y) - x).abs().max())
    violation = _violation(y)
    converged = optimal and residual <= tol and violation <= tol
    return BoxProjection(y, free, its, cgs, residual, violation, converged, clipped, fallback,
                         time.perf_counter() - start, tol)


def _newton(op: Downsampling, y0: Tensor, x: Tensor, tol: float, max_iter: int,
            cg_iter: int) -> tuple[Tensor, int, int]:
    """Semismooth Newton-CG on the dual ψ(λ); returns (y, Newton steps, CG steps)."""
    precondition = gram_preconditioner(op.inverse_gram_spectrum(*x.shape[-2:], x.device))

    dims = tuple(range(1, x.ndim))
    per_image = (-1,) + (1,) * (x.ndim - 1)

    def psi(lam: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """ψ per image (B,), v, y."""
        v = y0 + op.adjoint(lam)
        y = v.clamp(0.0, 1.0)
        value = 0.5 * (v.square().sum(dims) - (v - y).square().sum(dims)) - (lam * x).sum(dims)
        return value, v, y

    lam = torch.zeros_like(x)
    value, v, y = psi(lam)
    its = cgs = 0
    for its in range(1, max_iter + 1):
        r = x - op(y)  # = −∇ψ
        if float(r.abs().max()) <= tol:
            return y, its - 1, cgs
        # clamped pixels get a small weight so that A D Aᵀ stays invertible where a whole LR pixel's
        # support is clamped; inexact Newton: CG only to a relative accuracy that tightens as r shrinks,
        # per image; an image already within tol is left where it is (infinite CG tolerance: step 0)
        inside = ((v > 0.0) & (v < 1.0)).double().clamp(min=1e-3)
        r_max = r.abs().amax(dims)
        cg_tol = (r_max.clamp(max=0.01).sqrt() * r_max).clamp(min=tol * 1e-2)
        step, n, _ = conjugate_gradients(lambda d: op(inside * op.adjoint(d)), precondition, r, cg_iter,
                                      torch.where(r_max <= tol, float("inf"), cg_tol))
        cgs += n
        # Armijo backtracking per image (∇ψᵀ Δ < 0 for a descent direction), so that an image on a thin
        # set does not hold back the step of the others; 1e-3 is the round-off floor of t
        slope = -(r * step).sum(dims)
        t = torch.ones_like(value)
        while True:
            new_value, new_v, new_y = psi(lam + t.view(per_image) * step)
            accept = (new_value <= value + 1e-4 * t * slope) | (t < 1e-3)
            if accept.all():
                break
            t = torch.where(accept, t, 0.5 * t)
        lam, value, v, y = lam + t.view(per_image) * step, new_value, new_v, new_y
    return y, max_iter, cgs


def _dykstra(op: Downsampling, y0: Tensor, x: Tensor, tol: float, max_iter: int) -> tuple[Tensor, int, int]:
    """Dykstra's alternating projections; the affine set needs no correction term (it is affine)."""
    z, q = y0, torch.zeros_like(y0)
    for its in range(1, max_iter + 1):
        a = z + op.pinv(x - op(z))  # P_aff
        z = (a + q).clamp(0.0, 1.0)  # P_box with Dykstra's correction
        q = a + q - z
        if float((op(z) - x).abs().max()) <= tol:
            return z, its, 0
    return z, max_iter, 0
