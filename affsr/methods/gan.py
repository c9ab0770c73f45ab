"""Adversarial training with instance noise: AffGAN (``projected``) and SoftGAN (``soft``).

Paper §3.2, Eq. 10, with D = sigmoid(logit):
    L(D; G) = −E_y log D(y) − E_x log(1 − D(G(x)))
    L(G; D) = −E_x log[D(G(x)) / (1 − D(G(x)))]  = −E_x logit(G(x))
The generator loss estimates KL[q_G ‖ p_Y] when D is near-optimal (App. A), i.e. cross-entropy minus
output entropy. Real samples are HR images *unpaired* with the generator's inputs: only the marginals
p_X and p_Y are needed. Instance noise (§3.3): Gaussian noise of std σ(t) is added to both real and
generated images before D, σ annealed linearly from ``instance_noise`` to 0 over the first
``noise_anneal`` fraction of training (the paper's ImageNet schedule: 0.1 → 0 over all of training).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from affsr.methods.base import Batch, Context, Phase, consistency_penalty, generator_networks


@dataclass(frozen=True)
class Options:
    """Instance noise std at the start (pixel scale [0, 1]), fraction of training to anneal it to
    zero over, and discriminator steps per generator step."""

    instance_noise: float = 0.1
    noise_anneal: float = 1.0
    d_steps: int = 1


class Objective:
    """Alternate D and G steps; G is the SR model (projected or not)."""

    def __init__(self, context: Context):
        options = context.options
        if options.instance_noise < 0 or not 0 < options.noise_anneal <= 1 or options.d_steps < 1:
            raise ValueError(
                "gan options: need instance_noise ≥ 0, 0 < noise_anneal ≤ 1, d_steps ≥ 1; "
                f"got {options}"
            )
        self.context = context
        self.discriminator = context.nets.discriminator()
        self.networks = {**generator_networks(context), "discriminator": self.discriminator}
        self.phases = [Phase("discriminator", "discriminator", self.discriminator_loss)] * options.d_steps
        self.phases = self.phases + [Phase("generator", "generator", self.generator_loss)]

    def noise_std(self, progress: float) -> float:
        """σ(t): linear from ``instance_noise`` to 0 at ``noise_anneal`` of training."""
        options = self.context.options
        return options.instance_noise * max(0.0, 1.0 - progress / options.noise_anneal)

    def _noisy(self, y: Tensor, progress: float) -> Tensor:
        std = self.noise_std(progress)
        return y + std * torch.randn_like(y) if std > 0 else y

    def discriminator_loss(self, batch: Batch, progress: float) -> Tensor:
        with torch.no_grad():
            fake = self.context.model(batch.lr)
        real_logit = self.discriminator(self._noisy(batch.hr_unpaired, progress))
        fake_logit = self.discriminator(self._noisy(fake, progress))
        # −log D(y) = softplus(−logit), −log(1 − D(ŷ)) = softplus(logit): stable forms of Eq. 10.
        return F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()

    def generator_loss(self, batch: Batch, progress: float) -> Tensor:
        sr = self.context.model(batch.lr)
        logit = self.discriminator(self._noisy(sr, progress))
        return -logit.mean() + consistency_penalty(self.context, sr, batch.lr)
