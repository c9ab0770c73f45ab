"""The linear algebra behind A⁺ and the box projection: the spectrum of (A Aᵀ)⁺, conjugate gradients, CGLS.

Everything that solves with A on the LR grid comes here, so there is one of each:

- :func:`inverse_circulant_spectrum` — Ĝ⁺, the eigenvalues of (A Aᵀ)⁺ when A Aᵀ is circulant (the
  circular boundary): A⁺ in closed form (:meth:`affsr.operators.Downsampling.pinv`) and the
  preconditioner of every iterative solve;
- :func:`conjugate_gradients` — preconditioned CG on a batch of independent PSD systems (one per image):
  (A D Aᵀ) μ = r with D a diagonal weight on the HR grid (the box solvers and the box layer's gradient;
  D = 1 for the reflect boundary's A⁺, whose A Aᵀ is not circulant);
- :func:`least_squares` — CGLS, the minimum-norm least-squares solution where A Aᵀ is singular.

Preconditioners: (A Aᵀ)⁺ by FFT (:func:`gram_preconditioner`), exact when D = 1 and A is circular; and
S^{-1/2} (A Aᵀ)⁺ S^{-1/2}, S_i = (A² D)_i / (A² 1)_i the share of LR row i's squared weight that is free
(:func:`row_scaled_preconditioner`): it rescales rows whose support is nearly all held at a bound, where
(A Aᵀ)⁺ alone is off by orders of magnitude (the interior-point method's D, see
:data:`affsr.operators.box_projection.MEASURED`). Systems are solved in the dtype given (float64 for A⁺).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

Apply = Callable[[Tensor], Tensor]

#: Relative eigenvalue cut-off of (A Aᵀ)⁺: eigenvalues of A Aᵀ (squared singular values of A) below
#: GRAM_TOL · the largest count as zero — what makes Ĝ⁺ a *pseudo*-inverse for kernels whose aliased
#: spectrum vanishes (a rank-deficient A).
GRAM_TOL = 1e-10


def inverse_circulant_spectrum(first_column: Tensor, tol: float = GRAM_TOL) -> Tensor:
    """Ĝ⁺: the eigenvalues of the pseudo-inverse of a symmetric PSD circulant on an (h, w) grid, from its
    first column g (h, w): 1/Ĝ where Ĝ = DFT(g) > tol · max Ĝ, else 0. Real: g is symmetric about 0."""
    G = torch.fft.fft2(first_column).real
    keep = G > tol * G.max()
    return torch.where(keep, 1.0 / torch.where(keep, G, 1.0), 0.0)


def gram_preconditioner(inv_gram: Tensor) -> Apply:
    """r ↦ (A Aᵀ)⁺ r by FFT, for (B, C, h, w) r; ``inv_gram``: Ĝ⁺ on the (h, w) LR grid."""
    return lambda r: torch.fft.ifft2(torch.fft.fft2(r) * inv_gram).real


def row_scaled_preconditioner(op, weight: Tensor, inv_gram: Tensor) -> Apply:
    """r ↦ S^{-1/2} (A Aᵀ)⁺ S^{-1/2} r for the system A diag(weight) Aᵀ (module docstring); ``op`` is A.

    weight: (B, C, H, W) in [0, 1]. S is floored at 1e-30 only: rows held nearly all at a bound have tiny
    S, and a floor of 1e-12 doubled the interior-point method's CG steps (one batch of 6 natural test
    patches: 5,269 → 10,651)."""
    squared = type(op)(op.kernel.double() ** 2, op.scale, origin=op.origin, boundary=op.boundary)
    share = squared(weight) / squared(torch.ones_like(weight))
    scale = share.clamp(min=1e-30).rsqrt()
    inverse = gram_preconditioner(inv_gram)
    return lambda r: scale * inverse(scale * r)


def conjugate_gradients(apply: Apply, precondition: Apply, b: Tensor, max_steps: int,
                        atol: float | Tensor) -> tuple[Tensor, int, Tensor]:
    """Preconditioned CG for the PSD system apply(z) = b, (B, …), run as B independent solves at once.

    The system is block diagonal (one block per leading index), so each block gets its own step lengths
    and stops on its own max |residual| ≤ atol (a float, or a (B,) tensor of per-block tolerances): a
    block that needs many steps does not change the others' iterates. A block whose direction has no
    curvature (its search left the range of A D Aᵀ: all its pixels held at a bound) stops there. Returns
    (z, steps of the slowest block, converged (B,) bool)."""
    dims = tuple(range(1, b.ndim))
    per_image = (-1,) + (1,) * (b.ndim - 1)
    atol = torch.as_tensor(atol, dtype=b.dtype, device=b.device).expand(b.shape[0])
    z = torch.zeros_like(b)
    r = b.clone()
    p_r = precondition(r)
    d = p_r.clone()
    rho = (r * p_r).sum(dims)
    active = r.abs().amax(dims) > atol
    steps = max_steps
    for n in range(1, max_steps + 1):
        if not active.any():
            steps = n - 1
            break
        q = apply(d)
        curvature = (d * q).sum(dims)
        if n == 1:  # no curvature at the start: the preconditioned residual is the best direction there
            z = torch.where((active & (curvature <= 0)).view(per_image), p_r, z)
        active = active & (curvature > 0)
        alpha = torch.where(active, rho / torch.where(active, curvature, 1.0), 0.0).view(per_image)
        z = z + alpha * d
        r = r - alpha * q
        active = active & (r.abs().amax(dims) > atol)
        p_r = precondition(r)
        rho, rho_old = (r * p_r).sum(dims), rho
        beta = torch.where(active, rho / torch.where(rho_old == 0, 1.0, rho_old), 0.0).view(per_image)
        d = p_r + beta * d
    return z, steps, r.abs().amax(dims) <= atol


def least_squares(forward: Apply, backward: Apply, b: Tensor, tol: float, max_iter: int = 20000) -> Tensor:
    """The minimum-norm least-squares solution of forward(z) = b — B⁺ b for the linear map B = forward with
    transpose backward — by CGLS from z = 0 (its iterates stay in range(Bᵀ), so the limit is B⁺ b, also
    where B is rank-deficient), per (batch, channel) image in float64, to ‖Bᵀ r‖ ≤ tol ‖Bᵀ b‖.
    RuntimeError if it has not converged after ``max_iter`` iterations."""
    b = b.detach().to(torch.float64)

    def dot(a: Tensor, c: Tensor) -> Tensor:
        return (a * c).sum(dim=(-2, -1), keepdim=True)

    r = b.clone()
    g = backward(r)
    z, p, gamma = torch.zeros_like(g), g, dot(g, g)
    stop = tol**2 * gamma
    for _ in range(max_iter):
        if bool((gamma <= stop).all()):
            return z
        q = forward(p)
        qq = dot(q, q)
        alpha = torch.where(qq > 0, gamma / torch.where(qq > 0, qq, 1.0), 0.0)
        z, r = z + alpha * p, r - alpha * q
        g = backward(r)
        gamma, old = dot(g, g), gamma
        p = g + torch.where(old > 0, gamma / torch.where(old > 0, old, 1.0), 0.0) * p
    raise RuntimeError(f"CGLS did not converge in {max_iter} iterations")
