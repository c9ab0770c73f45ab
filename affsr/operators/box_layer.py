"""The box-constrained projection as a network layer: ŷ = P_C(y0), C = {y : A y = x, 0 ≤ y ≤ 1}, with its
exact gradient — the constraint ``projected_box``.

Forward: :func:`affsr.operators.box_projection.project_to_box` (``auto``: semismooth Newton, then the interior-point
method for the images Newton stalls on; to ``tol``), no autograd graph through the solver's iterations.
The active set D comes with the solver's result (an interior point lies strictly inside the box, so D is
read from its bound multipliers there, not from y).

Backward: the Euclidean projection onto a polytope is piecewise affine; where the active set is fixed
(almost everywhere), its Jacobian is the orthogonal projection onto the tangent space of the active
face, {δ : A δ = 0, δ_i = 0 for every pixel i at 0 or 1}:

    J = D − D Aᵀ (A D Aᵀ)⁺ A D,     D = diag(1 for pixels strictly inside (0, 1), else 0),

symmetric, so the vector-Jacobian product of an upstream gradient g is J g. (A D Aᵀ)⁺ is applied with
conjugate gradients on the LR grid, preconditioned by (A Aᵀ)⁻¹ (exact when no pixel is clamped, where
J reduces to the affine projection I − A⁺A). No gradient flows to x (the LR input is data).
"""

from __future__ import annotations

import torch
from torch import Tensor

from affsr.operators.box_projection import project_to_box
from affsr.operators.downsampling import Downsampling
from affsr.operators.linear_solvers import conjugate_gradients, gram_preconditioner

#: Tolerance of the forward solve (max |A y − x| and box violation, image units) and its budget of steps
#: (the interior-point method, where Newton hands an image over, took up to 50 on the natural patches).
TOL, MAX_ITER = 1e-6, 100
#: CG steps at most for one backward solve, and its tolerance relative to the largest |r|.
CG_STEPS, CG_RTOL = 200, 1e-10


def _solve_gram(op: Downsampling, free: Tensor, r: Tensor, inv_gram: Tensor) -> Tensor:
    """μ with (A D Aᵀ) μ = r, D = diag(free), by preconditioned CG (all images of the batch at once: the
    system is block diagonal). r: (B, C, h, w) float64."""
    mu, _, _ = conjugate_gradients(lambda v: op(free * op.adjoint(v)),
                                gram_preconditioner(inv_gram),
                                r, CG_STEPS, atol=CG_RTOL * r.abs().amax(tuple(range(1, r.ndim))) + 1e-300)
    return mu


class _ProjectToBox(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y0: Tensor, x: Tensor, op: Downsampling, tol: float) -> Tensor:  # noqa: D102
        result = project_to_box(op, y0, x, tol=tol, max_iter=MAX_ITER)
        y = result.image
        ctx.op = op
        ctx.save_for_backward(result.free.to(torch.float64))
        return y.to(y0.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        (free,) = ctx.saved_tensors
        op = ctx.op
        g = grad.double() * free
        inv_gram = op.inverse_gram_spectrum(*op.lr_shape(tuple(g.shape[-2:])), g.device)
        mu = _solve_gram(op, free, op(g), inv_gram)
        return (g - free * op.adjoint(mu)).to(grad.dtype), None, None, None


def project_box(y0: Tensor, x: Tensor, op: Downsampling, tol: float = TOL) -> Tensor:
    """P_C(y0) for (B, C, H, W) y0 and (B, C, h, w) x, differentiable in y0 (see the module docstring)."""
    return _ProjectToBox.apply(y0, x, op, tol)
