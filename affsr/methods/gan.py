"""Adversarial training with instance noise: AffGAN (``projected``) and SoftGAN (``soft``).

Paper §3.2, Eq. 10, with D = sigmoid(logit):
    L(D; G) = −E_y log D(y) − E_x log(1 − D(G(x)))
    L(G; D) = −E_x log[D(G(x)) / (1 − D(G(x)))]  = −E_x logit(G(x))
The generator loss estimates KL[q_G ‖ p_Y] when D is near-optimal (App. A), i.e. cross-entropy minus
output entropy. Real samples are HR images *unpaired* with the generator's inputs: only the marginals
p_X and p_Y are needed. Instance noise (§3.3): Gaussian noise of std σ(t) is added to both real and
generated images before D, σ annealed linearly from ``instance_noise`` to ``noise_end`` over the first
``noise_anneal`` fraction of training, then held at ``noise_end`` (the paper's ImageNet schedule:
0.1 → 0 over all of training, the default).

Why a floor ``noise_end`` > 0 can be needed: the generator's outputs lie on a set of lower dimension
than the data (on the 2-D toy, a curve y = g(x) in the plane; projected, one point per solution line).
Without noise q_G and p_Y then have (nearly) disjoint supports, KL[q_G ‖ p_Y] is infinite, and the
discriminator can separate them perfectly: its logit saturates and stops telling the generator where
the data are (§3.3, Fig. 6). A remaining noise std keeps both noisy distributions overlapping, so D
estimates the density ratio of the σ-smoothed distributions until the end (cf. the DAE's smallest σ).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from affsr.methods.base import Batch, Context, Phase, consistency_penalty, generator_networks

LOSSES = ("kl", "hinge")


@dataclass(frozen=True)
class Options:
    """Instance noise std at the start (pixel scale [0, 1]), its final std, the fraction of training
    to anneal it over, and discriminator steps per generator step."""

    instance_noise: float = 0.1
    noise_anneal: float = 1.0
    d_steps: int = 1
    #: Instance noise std from ``noise_anneal`` on (0: anneal to zero, the paper's ImageNet schedule).
    noise_end: float = 0.0
    #: Loss form: ``kl`` (the paper's Eq. 10: the generator loss estimates KL[q‖p]) or ``hinge``
    #: (D: E relu(1 − logit_real) + E relu(1 + logit_fake); G: −E logit_fake, as in SAGAN/BigGAN).
    #: A variant beyond these is a subclass overriding :meth:`Objective.discriminator_terms` and
    #: :meth:`Objective.generator_term`, with the instance noise and the phases inherited.
    loss: str = "kl"

    def __post_init__(self) -> None:
        """Ranges, checked when params are loaded (a ValueError "key: ..." becomes a one-line error)."""
        if self.instance_noise < 0:
            raise ValueError(f"instance_noise: must be ≥ 0, got {self.instance_noise}")
        if not 0 <= self.noise_end <= self.instance_noise:
            raise ValueError(f"noise_end: must be in [0, instance_noise = {self.instance_noise}], got {self.noise_end}")
        if not 0 < self.noise_anneal <= 1:
            raise ValueError(f"noise_anneal: must be in (0, 1], got {self.noise_anneal}")
        if self.d_steps < 1:
            raise ValueError(f"d_steps: must be ≥ 1, got {self.d_steps}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss: '{self.loss}' is not one of: {', '.join(LOSSES)}")


class Objective:
    """Alternate D and G steps; G is the SR model (projected or not)."""

    def __init__(self, context: Context):
        options = context.options  # ranges checked by Options
        self.context = context
        self._fake_of: Batch | None = None
        self._fake_value: Tensor | None = None
        self.discriminator = context.nets.discriminator()
        self.networks = {**generator_networks(context), "discriminator": self.discriminator}
        self.phases = [Phase("discriminator", "discriminator", self.discriminator_loss)] * options.d_steps
        self.phases = self.phases + [Phase("generator", "generator", self.generator_loss)]

    def noise_std(self, progress: float) -> float:
        """σ(t): linear from ``instance_noise`` to ``noise_end`` at ``noise_anneal`` of training, then
        ``noise_end``."""
        options = self.context.options
        remaining = max(0.0, 1.0 - progress / options.noise_anneal)
        return options.noise_end + (options.instance_noise - options.noise_end) * remaining

    def _noisy(self, y: Tensor, progress: float) -> Tensor:
        std = self.noise_std(progress)
        return y + std * torch.randn_like(y) if std > 0 else y

    def _fake(self, batch: Batch) -> Tensor:
        """G(x) for the discriminator phases of one step, computed once per batch: the generator does
        not change between them (the loop draws one batch per step), so ``d_steps`` > 1 costs no extra
        generator passes (20 per step on the toy; its generators have no batch norm or noise, so the
        result is the same)."""
        if self._fake_of is not batch:
            with torch.no_grad():
                self._fake_value = self.context.model(batch.lr)
            self._fake_of = batch
        return self._fake_value

    def discriminator_loss(self, batch: Batch, progress: float) -> Tensor:
        fake = self._fake(batch)
        real_logit = self.discriminator(self._noisy(batch.hr_unpaired, progress))
        fake_logit = self.discriminator(self._noisy(fake, progress))
        return self.discriminator_terms(real_logit, fake_logit)

    def generator_loss(self, batch: Batch, progress: float) -> Tensor:
        sr = self.context.model(batch.lr)
        logit = self.discriminator(self._noisy(sr, progress))
        return self.generator_term(logit) + consistency_penalty(self.context, sr, batch.lr)

    def discriminator_terms(self, real_logit: Tensor, fake_logit: Tensor) -> Tensor:
        """D's loss from its logits on noisy real and generated samples (B,) each."""
        if self.context.options.loss == "hinge":
            return F.relu(1 - real_logit).mean() + F.relu(1 + fake_logit).mean()
        # −log D(y) = softplus(−logit), −log(1 − D(ŷ)) = softplus(logit): stable forms of Eq. 10.
        return F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()

    def generator_term(self, fake_logit: Tensor) -> Tensor:
        """G's adversarial loss from D's logits on its noisy outputs (B,): −E logit for both loss forms
        (for ``kl`` it is Eq. 10's −E log[D/(1 − D)])."""
        return -fake_logit.mean()
