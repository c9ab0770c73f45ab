"""Denoiser-guided SR: AffDG (``projected``) and SoftDG (``soft``) (paper §3.3, Eqs. 11–12, App. D).

The amortised MAP objective E_x log p_Y(ŷ), ŷ = g_θ(x), has the gradient (Eq. 11)
    ∂/∂θ E_x log p_Y(ŷ) = E_x[ ∇_y log p_Y(y)|_{y=ŷ} · ∂ŷ/∂θ ],
and a denoiser trained at noise std σ (:mod:`affsr.methods.dae`) estimates the score of the σ-smoothed
prior (Eq. 12):  s(ŷ) = (D_σ(ŷ) − ŷ)/σ² ≈ ∇ log p_σ(ŷ).  The score is a constant for the generator's
step (no back-propagation into the denoiser, which is frozen anyway): the generator ascends log p, so
its loss has the gradient −s(ŷ)/B w.r.t. ŷ (B = batch size, i.e. the mean over the batch of the
per-image log-density), back-propagated through ŷ = g_θ(x). With the projection (AffDG) that gradient
is high-passed by (I − A⁺A) on its way to f_θ (App. B), so outputs stay exactly consistent; SoftDG adds
the soft penalty weight·Σ|x − Aŷ| per image instead.

The denoiser snapshots are used in turn (:func:`~affsr.methods.base.current_guide`), each for an equal
share of training, in the order they were taken: decreasing σ (App. D). The σ in use is logged as
``snapshot_label``.

Loss value (logged) and gradient. We return
    ½ mean_b ‖D_σ(ŷ_b) − ŷ_b‖² / σ²  +  (S − stop_grad(S))  +  consistency penalty,
    S = −(1/B) Σ_b ⟨stop_grad(s(ŷ_b)), ŷ_b⟩,
whose first term carries no gradient and whose second term is zero in value and carries exactly the
gradient −s/B. The first term is a readable stand-in for −log p_σ(ŷ) in nats per image up to a
constant: near a data manifold (locally flat, noise-free) D_σ(ŷ) − ŷ is minus the offset d of ŷ from the
manifold and −log p_σ(ŷ) ≈ ‖d‖²/(2σ²) + const. It jumps when the next snapshot (smaller σ) is loaded —
the staircases of the paper's Fig. 7 — so compare values only within one snapshot's share of training.

Scale: the score grows like 1/σ² (10⁴ at σ = 0.01). Adam is invariant to a constant scale of the
gradient, so this does not change AffDG's steps, but it does change the balance of SoftDG's two terms:
a fixed ``consistency_weight`` matters less and less as σ falls. Both terms are per image (nats): the
penalty is the Laplace NLL weight·Σ|x − Aŷ| of :func:`~affsr.methods.base.consistency_penalty`.

Where the score is evaluated (``noise_input``): Eq. 12 gives ∇ log p_σ at the point D is applied to, so by
default (``False``) we evaluate D at ŷ itself — the gradient of log p_σ(ŷ). App. D prints the denoiser
applied to a noisy ỹ, which is ambiguous (paper.md §3.4); with ``True`` we evaluate D at ỹ = ŷ + σε
(fresh ε each step) and use s(ỹ) = (D(ỹ) − ỹ)/σ², an unbiased estimate of the gradient of
E_ε log p_σ(ŷ + σε) (a further-smoothed objective). That keeps D on the noisy inputs it was trained on
(a DAE at large σ never saw clean images), at the price of noisier gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from affsr.methods.base import Batch, Context, Phase, consistency_penalty, current_guide, generator_networks

GUIDED_BY = "dae"


@dataclass(frozen=True)
class Options:
    """``noise_input``: evaluate the denoiser at ŷ + σε instead of at ŷ (see the module docstring)."""

    noise_input: bool = False


class Objective:
    """Gradient ascent of log p_σ(ŷ) with the score of frozen denoiser snapshots of decreasing σ."""

    def __init__(self, context: Context):
        self.context = context
        self.networks = generator_networks(context)
        self.phases = [Phase("generator", "generator", self.generator_loss)]

    def snapshot_label(self, progress: float) -> float:
        """σ of the denoiser snapshot in use at ``progress`` (logged as ``snapshot_label``)."""
        return float(current_guide(self.context, progress).label)

    def score(self, sr: Tensor, progress: float) -> tuple[Tensor, Tensor, float]:
        """(s, D(ŷ′) − ŷ′, σ) at ŷ′ = ŷ (or ŷ + σε with ``noise_input``); constants, no graph."""
        guide = current_guide(self.context, progress)
        sigma = float(guide.label)
        if not sigma > 0:
            raise ValueError(f"denoiser_guided: guide label (the denoiser's σ) must be > 0, got {sigma}")
        with torch.no_grad():
            point = sr.detach()
            if self.context.options.noise_input:
                point = point + sigma * torch.randn_like(point)
            residual = guide.network(point) - point
        return residual / sigma**2, residual, sigma

    def generator_loss(self, batch: Batch, progress: float) -> Tensor:
        sr = self.context.model(batch.lr)
        score, residual, sigma = self.score(sr, progress)
        b = sr.shape[0]
        value = 0.5 * residual.square().sum() / (b * sigma**2)
        surrogate = -(score * sr).sum() / b
        return value + (surrogate - surrogate.detach()) + consistency_penalty(self.context, sr, batch.lr)
