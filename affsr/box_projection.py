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
At a zero of ∇ψ the KKT conditions hold, so y(λ) is the nearest point of C to y0.

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

from affsr.operators import Downsampling

__all__ = ["BoxProjection", "project_to_box", "inverse_gram_spectrum", "conjugate_gradients", "MEASURED"]

#: Measured on CPU (2 threads, float64), x = 8-bit A of a photo, y0 = the affgan checkpoints' outputs:
MEASURED = """
grass affgan, camera HR 256², tol 1e-6: Newton 4 its (16 CG) 0.05 s; Dykstra 59 sweeps 0.14 s (189 px clipped)
faces affgan, moon HR 256², tol 1e-6: Newton 4 its (15 CG) 0.04 s; Dykstra 45 sweeps 0.10 s (92 px clipped)
scripts/round_trip.py, 30 SR checkpoints x 3 photos, HR 256², tol 0.01/255: 0.03-0.08 s per image, all converged
natural affgan, astronaut HR 256² (LR = 8-bit A y): NOT converged in 50 its, residual stalls at 3.5e-4 (7.8 s)
natural affgan, retina HR 1024² (3 channels), tol 1e-6: NOT converged in 50 its (1522 CG), 1.35e-4, 234 s
Dykstra after 200 sweeps on a 256² grey case: 7.8e-4 (Newton: 3e-7 in 7 its).
The stalls come with large saturated (0 or 255) regions: x then lies on the boundary of A [0, 1]ⁿ (or, after
8-bit rounding, just outside it), the dual optimum is not attained and λ grows without bound. Exact float
LR (x = A y, C non-empty) stalls too, on near-saturated rows (x ≈ 1e-5 … 2.5e-4 over an almost black
support): 3 of 16 natural training patches. Tried on those, none adopted: fixing the supports of saturated
rows (facial reduction; no gain, and infeasible on 8-bit LR: residual 0.88), per-image CG and line search,
Levenberg–Marquardt μ I instead of the 1e-3 floor on D (five schedules), a stall exit (bounded time, 2× the
residual), a jump to the first breakpoint on rows whose support is all clamped (worse: 2.8e-3).
Round trip (scripts/round_trip.py's measure) on retina 1024² colour, natural affgan / affmse: max |Δ| 0 grey
levels with the projection (not converged to 1e-2/255, 250 / 267 s), 17 without it.
"""


@dataclass(frozen=True)
class BoxProjection:
    """Result of :func:`project_to_box`.

    image: (B, C, H, W) float64, in [0, 1] up to ``box_violation``; iterations: outer iterations (Newton
    steps or Dykstra sweeps); cg_steps: total CG steps (0 for Dykstra); residual: max |A y − x| (units of
    the image, i.e. 1 = white); box_violation: max distance of y outside [0, 1]; converged: both ≤ tol;
    clipped_before: pixels of y0 outside [0, 1] (what clipping would have changed); seconds: wall time.
    """

    image: Tensor
    iterations: int
    cg_steps: int
    residual: float
    box_violation: float
    converged: bool
    clipped_before: int
    seconds: float
    tol: float

    def summary(self) -> str:
        state = "converged" if self.converged else f"NOT converged to tol {self.tol:g}"
        return (f"box projection {state} in {self.iterations} iterations ({self.cg_steps} CG steps, "
                f"{self.seconds:.2f} s): max |Ay − x| = {self.residual:.2e}, box violation = {self.box_violation:.1e}")


def inverse_gram_spectrum(op: Downsampling, h: int, w: int, like: Tensor) -> Tensor:
    """Eigenvalues of (A Aᵀ)⁺ on the (h, w) LR grid (A Aᵀ is circulant there): (h, w) float64."""
    delta = torch.zeros(1, 1, h, w, dtype=torch.float64, device=like.device)
    delta[..., 0, 0] = 1.0
    G = torch.fft.fft2(op(op.adjoint(delta))[0, 0]).real
    keep = G > 1e-10 * G.max()
    return torch.where(keep, 1.0 / torch.where(keep, G, 1.0), 0.0)


def _violation(y: Tensor) -> float:
    return float(torch.maximum(-y, y - 1.0).clamp(min=0).max()) if y.numel() else 0.0


def project_to_box(op: Downsampling, y0: Tensor, x: Tensor, tol: float = 1e-6, max_iter: int = 50,
                   method: str = "newton", cg_iter: int = 100) -> BoxProjection:
    """Nearest point of {y : A y = x, 0 ≤ y ≤ 1} to y0, to tolerance ``tol`` (max |A y − x| and box violation).

    y0: (B, C, H, W) any float; x: (B, C, H/s, W/s) in [0, 1]; computed in float64 on y0's device.
    ``method``: "newton" (default, see the module docstring) or "dykstra" (alternating projections;
    ``max_iter`` then counts sweeps — give it thousands). Never fails silently: ``converged`` is False
    when ``max_iter`` ran out, e.g. because x is not A of any image in [0, 1] (the set is then empty).
    """
    if method not in ("newton", "dykstra"):
        raise ValueError(f"method must be 'newton' or 'dykstra', got {method!r}")
    start = time.perf_counter()
    y0, x = y0.detach().double(), x.detach().double().to(y0.device)
    clipped = int(((y0 < 0) | (y0 > 1)).sum())
    if method == "newton":
        y, its, cgs = _newton(op, y0, x, tol, max_iter, cg_iter)
    else:
        y, its, cgs = _dykstra(op, y0, x, tol, max_iter)
    residual = float((op(y) - x).abs().max())
    violation = _violation(y)
    return BoxProjection(y, its, cgs, residual, violation, residual <= tol and violation <= tol, clipped,
                         time.perf_counter() - start, tol)


def _newton(op: Downsampling, y0: Tensor, x: Tensor, tol: float, max_iter: int,
            cg_iter: int) -> tuple[Tensor, int, int]:
    """Semismooth Newton-CG on the dual ψ(λ); returns (y, Newton steps, CG steps)."""
    h, w = x.shape[-2:]
    inv_gram = inverse_gram_spectrum(op, h, w, x)

    def precondition(r: Tensor) -> Tensor:  # (A Aᵀ)⁺ r by FFT
        return torch.fft.ifft2(torch.fft.fft2(r) * inv_gram).real

    def psi(lam: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        v = y0 + op.adjoint(lam)
        y = v.clamp(0.0, 1.0)
        value = 0.5 * (v.square().sum() - (v - y).square().sum()) - (lam * x).sum()
        return value, v, y

    lam = torch.zeros_like(x)
    value, v, y = psi(lam)
    its = cgs = 0
    for its in range(1, max_iter + 1):
        r = x - op(y)  # = −∇ψ
        if float(r.abs().max()) <= tol:
            return y, its - 1, cgs
        # clamped pixels get a small weight so that A D Aᵀ stays invertible where a whole LR pixel's
        # support is clamped; inexact Newton: CG only to a relative accuracy that tightens as r shrinks
        inside = ((v > 0.0) & (v < 1.0)).double().clamp(min=1e-3)
        r_max = float(r.abs().max())
        step, n = conjugate_gradients(lambda d: op(inside * op.adjoint(d)), precondition, r, cg_iter,
                      max(min(0.1, r_max**0.5) * r_max, tol * 1e-2))
        cgs += n
        slope = -(r * step).sum()  # ∇ψᵀ Δ < 0 for a descent direction
        t = 1.0
        while True:
            new_value, new_v, new_y = psi(lam + t * step)
            if new_value <= value + 1e-4 * t * slope or t < 1e-3:  # round-off floor
                break
            t *= 0.5
        lam, value, v, y = lam + t * step, new_value, new_v, new_y
    return y, max_iter, cgs


def conjugate_gradients(apply, precondition, b: Tensor, max_steps: int, atol: float) -> tuple[Tensor, int]:
    """Preconditioned CG for the PSD system apply(z) = b, all images of the batch at once (one shared
    step length is fine: the system is block-diagonal, and CG only needs *a* descent direction here)."""
    z = torch.zeros_like(b)
    r = b.clone()
    p_r = precondition(r)
    d = p_r.clone()
    rho = (r * p_r).sum()
    for n in range(1, max_steps + 1):
        q = apply(d)
        curvature = (d * q).sum()
        if curvature <= 0:  # direction in the null space of A D Aᵀ (all its pixels clamped)
            return (z if n > 1 else p_r), n
        alpha = rho / curvature
        z = z + alpha * d
        r = r - alpha * q
        if float(r.abs().max()) <= atol:
            return z, n
        p_r = precondition(r)
        rho, rho_old = (r * p_r).sum(), rho
        d = p_r + (rho / rho_old) * d
    return z, max_steps


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
