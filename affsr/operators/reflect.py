"""The ``reflect`` boundary of :class:`affsr.operators.Downsampling`: A, Aᵀ and A⁺ without wrap-around.

``reflect`` is *half-sample symmetric* padding: the edge pixel is repeated, … y1 y0 | y0 y1 … y_{n−1} |
y_{n−1} y_{n−2} … — numpy's ``np.pad(mode="symmetric")``, scipy.ndimage's ``mode="reflect"`` and MATLAB
imresize's edge rule (not torch's / numpy's ``reflect``, which skips the edge pixel). With (oy, ox) = origin,

    (A y)[i, j] = Σ_{a,b} kernel[a, b] · y[σ_H(s·i + a − oy), σ_W(s·j + b − ox)],   σ_n(q) = q mod 2n folded
    onto [0, n) by m ↦ 2n − 1 − m for m ≥ n,

i.e. the circular operator with the index map (q mod n) replaced by σ_n. Padding is a gather along each axis
(``index_select``) and its transpose is the scatter-add (``index_add``) that folds the padded margin back onto
the image, so Aᵀ is exactly the transpose of A, both linear and differentiable.

A Aᵀ is no longer circulant, so A⁺ = Aᵀ (A Aᵀ)⁻¹ x is solved by preconditioned conjugate gradients on the LR
grid, in float64, preconditioned with the circular operator's exact FFT inverse (the two A Aᵀ agree away
from the border), to a relative residual ≤ ``cg_tol`` (the solvers: :mod:`affsr.operators.linear_solvers`).
Where A Aᵀ is singular (A rank-deficient) that CG cannot converge, and A⁺ x is computed by CGLS on A
itself (minimum-norm least squares; slower, exact to round-off). Gradients go through a second solve (the
inverse is symmetric), not through the iterations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from affsr.operators.linear_solvers import conjugate_gradients, gram_preconditioner, least_squares

BOUNDARIES = ("circular", "reflect")
cg_tol = 1e-13  # relative residual max|A Aᵀ u − x| / max|x| per image at which CG stops
cg_max_iter = 1000


def check(boundary: str) -> str:
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    return boundary


def symmetric_index(n: int, o: int, length: int, device: torch.device) -> Tensor:
    """Padded index p ∈ [0, length) -> original pixel σ_n(p − o) (half-sample symmetric)."""
    m = torch.remainder(torch.arange(length, device=device) - o, 2 * n)
    return torch.where(m >= n, 2 * n - 1 - m, m)


def apply(op, y: Tensor) -> Tensor:
    """A·y with the reflect boundary: (B, C, H, W) -> (B, C, H/s, W/s)."""
    (kh, kw), (oy, ox) = op.kernel_shape, op.origin
    H, W = y.shape[-2:]
    yp = y.index_select(-2, symmetric_index(H, oy, H + kh - 1, y.device))
    yp = yp.index_select(-1, symmetric_index(W, ox, W + kw - 1, y.device))
    return F.conv2d(yp, op._weight(y.shape[1], y), stride=op.scale, groups=y.shape[1])


def adjoint(op, x: Tensor) -> Tensor:
    """Aᵀ·x with the reflect boundary: (B, C, h, w) -> (B, C, h·s, w·s), the exact transpose of :func:`apply`."""
    s, (oy, ox) = op.scale, op.origin
    H, W = x.shape[-2] * s, x.shape[-1] * s
    # onto the padded grid (H + kh − 1, W + kw − 1), as for the circular boundary …
    z = F.conv_transpose2d(x, op._weight(x.shape[1], x), stride=s, groups=x.shape[1], output_padding=s - 1)
    # … then fold the margin back: the transpose of a gather is the scatter-add of the same indices
    z = z.new_zeros(*z.shape[:-2], H, z.shape[-1]).index_add(-2, symmetric_index(H, oy, z.shape[-2], x.device), z)
    return z.new_zeros(*z.shape[:-1], W).index_add(-1, symmetric_index(W, ox, z.shape[-1], x.device), z)


def solve_gram(op, b: Tensor) -> tuple[Tensor, int]:
    """u = (A Aᵀ)⁻¹ b per (batch, channel) image by preconditioned conjugate gradients in float64, to a
    max-norm relative residual ≤ ``cg_tol``; preconditioned with the circular operator's exact FFT inverse
    (:meth:`~affsr.operators.Downsampling.inverse_gram_spectrum`). Returns (u, CG steps); RuntimeError
    where CG does not converge (A Aᵀ singular: A rank-deficient)."""
    b = b.detach().to(torch.float64)
    B, C, h, w = b.shape
    systems = b.reshape(B * C, 1, h, w)  # one system per (batch, channel) image: A acts channel by channel
    inv_gram = op.inverse_gram_spectrum(h, w, b.device)
    if not bool((inv_gram > 0).all()):  # singular circular A Aᵀ: no usable preconditioner
        inv_gram = torch.ones_like(inv_gram)
    atol = cg_tol * systems.abs().amax(dim=(1, 2, 3))
    u, steps, converged = conjugate_gradients(lambda p: apply(op, adjoint(op, p)), gram_preconditioner(inv_gram),
                                          systems, cg_max_iter, atol)
    if not bool(converged.all()):
        raise RuntimeError(f"reflect-boundary pinv: conjugate gradients did not reach relative residual {cg_tol:g} "
                           f"in {cg_max_iter} iterations; A Aᵀ is singular or too ill-conditioned for this operator "
                           f"({op!r}) on a {h}x{w} LR grid")
    return u.reshape(B, C, h, w), steps


class _Solve(torch.autograd.Function):
    """u = (A Aᵀ)⁻¹ x as a linear autograd op: the backward pass is the same (symmetric) solve."""

    @staticmethod
    def forward(ctx, x: Tensor, op) -> Tensor:
        ctx.op = op
        return solve_gram(op, x)[0].to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return solve_gram(ctx.op, grad)[0].to(grad.dtype), None


class _RankDeficientPinv(torch.autograd.Function):
    """A⁺ x for an A without full row rank (A Aᵀ singular): CGLS on A; the backward pass is (Aᵀ)⁺ g."""

    @staticmethod
    def forward(ctx, x: Tensor, op) -> Tensor:
        ctx.op = op
        return least_squares(lambda y: apply(op, y), lambda v: adjoint(op, v), x, cg_tol).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        op = ctx.op
        return least_squares(lambda v: adjoint(op, v), lambda y: apply(op, y), grad, cg_tol).to(grad.dtype), None


def pinv(op, x: Tensor) -> Tensor:
    """A⁺·x = Aᵀ (A Aᵀ)⁻¹ x with the reflect boundary, in the input's dtype (solved in float64). Where A Aᵀ
    is singular (A rank-deficient: CG on it does not converge), A⁺ x by CGLS instead (slower, exact)."""
    if op.rank_deficient:
        return _RankDeficientPinv.apply(x, op)
    try:
        return adjoint(op, _Solve.apply(x, op))
    except RuntimeError:
        op.rank_deficient = True  # remembered: the next call goes straight to CGLS
        return _RankDeficientPinv.apply(x, op)
