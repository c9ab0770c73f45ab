"""The box-constrained projection by a primal-dual interior-point method: the solver for the images the
semismooth Newton method of :mod:`affsr.operators.box_projection` leaves unconverged.

Why a second solver: on photos with near-black (or near-white) LR pixels next to bright ones, the set
C = {y : A y = x, 0 ≤ y ≤ 1} is very thin — an LR pixel of 1e-5 says its whole support is black except
for a trace, while its neighbours need the same HR pixels bright. The dual multipliers of such rows
grow to ~3e4 and the Newton method changes its active set a few pixels per step: 50 steps left max
|A y − x| at 1e-5 … 2e-4 on 7 of 8 batches of natural test patches (:data:`MEASURED` there). An interior
point method does not walk the active set; it follows the central path, and converged on every one.

Problem: min ½‖y − y0‖² s.t. A y = x, 0 ≤ y ≤ 1. With multipliers λ (LR grid) and z, w ≥ 0 for the
lower and upper bounds, the perturbed KKT conditions are

    y − y0 − Aᵀλ − z + w = 0,   A y = x,   y z = σμ,   (1 − y) w = σμ,

μ = mean complementarity. One Newton step on them reduces to the LR system A Θ Aᵀ Δλ = r, Θ = 1 / (1 +
z/y + w/(1 − y)) ∈ (0, 1], solved by CG with the row-scaled preconditioner of :mod:`affsr.operators.linear_solvers`.
Mehrotra's predictor-corrector picks σ; the step length keeps every iterate strictly inside the box
(fraction 0.99 to the boundary), one step length per image. The start y = clamp(y0, 0.1, 0.9) with z, w
chosen so that the first equation holds exactly.

Result: y strictly inside (0, 1), so never a box violation; a pixel counts as held by a bound where its
bound multiplier exceeds its distance to that bound (z > y or w > 1 − y) — the active set that the box
layer's gradient needs (:mod:`affsr.operators.box_layer`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from affsr.operators.downsampling import Downsampling
from affsr.operators.linear_solvers import conjugate_gradients, row_scaled_preconditioner

#: Fraction of the way to the boundary of the box (and of z, w ≥ 0) that one step may go.
TO_BOUNDARY = 0.99
#: CG accuracy of each Newton system, relative to its largest right-hand side.
CG_RTOL = 1e-8


def interior_point(op: Downsampling, y0: Tensor, x: Tensor, tol: float, max_iter: int = 100,
                   cg_iter: int = 500) -> tuple[Tensor, Tensor, int, int, bool]:
    """Nearest point of C to y0 for every image: (y, free, iterations, CG steps, optimal).

    y0: (B, C, H, W) float64, x: (B, C, h, w) float64. Stops when, in every image, max |A y − x|, the
    stationarity residual and the mean complementarity μ are ≤ tol — then ``optimal`` is True — or after
    ``max_iter`` steps; an image that meets the test stops moving. Both matter: going on past
    convergence, the method lost it (one batch of natural patches, demanding every pixel's
    complementarity ≤ tol instead of μ: 2e-9 at step 28, 2.4e-3 at step 100), as Θ of pixels held at a
    bound falls towards round-off. Pixels whose bound multiplier is nearly zero are then known to about
    √tol. ``free``: bool, True where no bound holds the pixel (module docstring)."""
    dims = tuple(range(1, x.ndim))
    per_image = (-1,) + (1,) * (x.ndim - 1)
    pixels = y0[0].numel()
    precondition_base = op.inverse_gram_spectrum(*x.shape[-2:], x.device)
    y = y0.clamp(0.1, 0.9)
    room = 1 - y  # the upper slack, kept as its own variable: 1 − y rounds to 0 for y within 1e-16 of 1
    lam = torch.zeros_like(x)
    z = (y - y0).clamp(min=0) + 0.1
    w = (y0 - y).clamp(min=0) + 0.1
    cg_steps = 0
    for it in range(max_iter + 1):
        r_primal = x - op(y)
        r_dual = y - y0 - op.adjoint(lam) - z + w
        mu = ((y * z).sum(dims) + (room * w).sum(dims)) / (2 * pixels)
        # an image that has converged stays where it is: going on past convergence loses it (docstring)
        done = (r_primal.abs().amax(dims) <= tol) & (r_dual.abs().amax(dims) <= tol) & (mu <= tol)
        if done.all() or it == max_iter:
            break
        theta = 1.0 / (1.0 + z / y + w / room)
        precondition = row_scaled_preconditioner(op, theta, precondition_base)

        def newton_step(target_low: Tensor, target_high: Tensor):
            """(Δy, Δλ, Δz, Δw) towards y z = target_low, (1 − y) w = target_high."""
            nonlocal cg_steps
            g = -r_dual + (target_low - y * z) / y - (target_high - room * w) / room
            rhs = r_primal - op(theta * g)
            atol = torch.where(done, float("inf"), CG_RTOL * rhs.abs().amax(dims) + 1e-300)
            d_lam, n, _ = conjugate_gradients(lambda d: op(theta * op.adjoint(d)), precondition, rhs, cg_iter, atol)
            cg_steps += n
            d_y = theta * (g + op.adjoint(d_lam))
            return (d_y, d_lam, (target_low - y * z - z * d_y) / y, (target_high - room * w + w * d_y) / room)

        def longest_step(d_y: Tensor, d_z: Tensor, d_w: Tensor) -> Tensor:
            """Per image: the largest a ≤ 1 keeping y, 1 − y, z, w ≥ 0."""
            a = torch.ones_like(mu)
            for value, change in ((y, d_y), (room, -d_y), (z, d_z), (w, d_w)):
                ratio = torch.where(change < 0, -value / change, torch.full_like(value, float("inf")))
                a = torch.minimum(a, ratio.amin(dims))
            return a

        zero = torch.zeros_like(y)
        d_y, _, d_z, d_w = newton_step(zero, zero)  # predictor: straight for μ = 0
        a = longest_step(d_y, d_z, d_w).view(per_image)
        mu_aim = (((y + a * d_y) * (z + a * d_z)).sum(dims)
                  + ((room - a * d_y) * (w + a * d_w)).sum(dims)) / (2 * pixels)
        sigma_mu = ((mu_aim / mu).clamp(1e-3, 1.0) ** 3 * mu).view(per_image)
        d_y, d_lam, d_z, d_w = newton_step(sigma_mu - d_y * d_z, sigma_mu + d_y * d_w)  # corrector
        a = torch.where(done, 0.0, TO_BOUNDARY * longest_step(d_y, d_z, d_w)).view(per_image)
        y, room, lam, z, w = y + a * d_y, room - a * d_y, lam + a * d_lam, z + a * d_z, w + a * d_w
    free = (z <= y) & (w <= room)
    return y.clamp(0.0, 1.0), free, it, cg_steps, bool(done.all())  # the clamp only moves round-off (≤ 1e-15)
