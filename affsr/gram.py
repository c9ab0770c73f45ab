"""Solves with A D Aᵀ on the LR grid, shared by the box-constrained solvers and the box layer's gradient.

Every solver of {y : A y = x, 0 ≤ y ≤ 1} (:mod:`affsr.box_projection`, :mod:`affsr.box_interior`) and the
box layer's backward pass (:mod:`affsr.box_layer`) reduce to systems (A D Aᵀ) μ = r on the LR grid, with
D a diagonal weight in [0, 1] on the HR grid (1 where a pixel may move, 0 or small where a bound holds
it). They are solved by conjugate gradients; what differs is only D. Two preconditioners:

- (A Aᵀ)⁻¹, diagonal in the LR grid's DFT (A Aᵀ is circulant there), exact when D = 1;
- S^{-1/2} (A Aᵀ)⁻¹ S^{-1/2}, S_i = (A² D)_i / (A² 1)_i the share of LR row i's squared weight that is
  free (A² = A with the kernel squared): it rescales rows whose support is nearly all held at a bound,
  where (A Aᵀ)⁻¹ alone is off by orders of magnitude (the interior-point method's D, see
  :data:`affsr.box_projection.MEASURED`).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from affsr.operators import Downsampling

__all__ = ["conjugate_gradients", "inverse_gram_spectrum", "gram_preconditioner", "row_scaled_preconditioner"]

Apply = Callable[[Tensor], Tensor]


def inverse_gram_spectrum(op: Downsampling, h: int, w: int, like: Tensor) -> Tensor:
    """Eigenvalues of (A Aᵀ)⁺ on the (h, w) LR grid (A Aᵀ is circulant there): (h, w) float64."""
    delta = torch.zeros(1, 1, h, w, dtype=torch.float64, device=like.device)
    delta[..., 0, 0] = 1.0
    G = torch.fft.fft2(op(op.adjoint(delta))[0, 0]).real
    keep = G > 1e-10 * G.max()
    return torch.where(keep, 1.0 / torch.where(keep, G, 1.0), 0.0)


def gram_preconditioner(inv_gram: Tensor) -> Apply:
    """r ↦ (A Aᵀ)⁺ r by FFT, for (B, C, h, w) r; ``inv_gram`` from :func:`inverse_gram_spectrum`."""
    return lambda r: torch.fft.ifft2(torch.fft.fft2(r) * inv_gram).real


def row_scaled_preconditioner(op: Downsampling, weight: Tensor, inv_gram: Tensor) -> Apply:
    """r ↦ S^{-1/2} (A Aᵀ)⁺ S^{-1/2} r for the system A diag(weight) Aᵀ (module docstring).

    weight: (B, C, H, W) in [0, 1]. S is floored at 1e-30 only: rows held nearly all at a bound have tiny
    S, and a floor of 1e-12 doubled the interior-point method's CG steps (one batch of 6 natural test
    patches: 5,269 → 10,651)."""
    squared = Downsampling(op.kernel.double() ** 2, op.scale, origin=op.origin, boundary=op.boundary)
    share = squared(weight) / squared(torch.ones_like(weight))
    scale = share.clamp(min=1e-30).rsqrt()
    inverse = gram_preconditioner(inv_gram)
    return lambda r: scale * inverse(scale * r)


def conjugate_gradients(apply: Apply, precondition: Apply, b: Tensor, max_steps: int,
                        atol: float | Tensor) -> tuple[Tensor, int]:
    """Preconditioned CG for the PSD system apply(z) = b, (B, C, h, w), run as B independent solves at once.

    The system is block diagonal (one block per image), so each image gets its own step lengths and stops
    on its own max |residual| ≤ atol (a float, or a (B,) tensor of per-image tolerances): an image that
    needs many steps does not change the others' iterates. An image whose direction has no curvature
    (its search left the range of A D Aᵀ: all its pixels held at a bound) stops there. Returns (z, steps
    of the slowest image)."""
    dims = tuple(range(1, b.ndim))
    per_image = (-1,) + (1,) * (b.ndim - 1)
    atol = torch.as_tensor(atol, dtype=b.dtype, device=b.device).expand(b.shape[0])
    z = torch.zeros_like(b)
    r = b.clone()
    p_r = precondition(r)
    d = p_r.clone()
    rho = (r * p_r).sum(dims)
    active = r.abs().amax(dims) > atol
    for n in range(1, max_steps + 1):
        if not active.any():
            return z, n - 1
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
    return z, max_steps
