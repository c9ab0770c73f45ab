"""What every objective receives and returns: the batch, the context, and its phases."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

from torch import Tensor, nn


@dataclass
class Batch:
    """One training batch, already on the training device.

    ``lr`` (B, C, h, w) and ``hr`` (B, C, H, W) are paired (x = A y); ``hr_unpaired`` (B, C, H, W) is an
    independent draw of HR images — the GAN's "real" samples, since AffGAN needs only the marginals.
    (The 2-D toy uses (B, 1) and (B, 2) vectors instead of images; objectives do not care.)
    """

    lr: Tensor
    hr: Tensor
    hr_unpaired: Tensor


class NetworkFactory(Protocol):
    """Builds the auxiliary networks an objective needs, sized for the data (images or the 2-D toy)."""

    def discriminator(self) -> nn.Module: ...

    def denoiser(self) -> nn.Module: ...

    def density(self) -> nn.Module: ...


@dataclass
class Guide:
    """A frozen snapshot of a trained auxiliary network (a denoiser or a density model).

    ``label`` is what distinguishes snapshots: the noise level σ of a denoiser snapshot, or the
    training progress of a density-model snapshot. Guides come in curriculum order.
    """

    label: float
    network: nn.Module


@dataclass
class Context:
    """Everything an objective may use to build itself; no files, no device choice.

    ``model`` is the super-resolver ŷ = model(x) (``model.op`` is A, ``model.constraint`` one of
    projected / soft / none); ``guides`` are loaded by the CLI from the run named by the method's
    ``guide`` setting (empty otherwise).
    """

    model: nn.Module
    options: object
    consistency_weight: float
    nets: NetworkFactory
    guides: list[Guide] = field(default_factory=list)


@dataclass
class Phase:
    """One optimiser step of a training step: lower ``loss(batch, progress)`` w.r.t. ``network``.

    ``progress`` runs from 0 to 1 over training (for schedules such as instance-noise annealing).
    """

    name: str
    network: str
    loss: Callable[[Batch, float], Tensor]


def consistency_penalty(context: Context, sr: Tensor, lr: Tensor) -> Tensor:
    """Soft constraint of SoftGAN/SoftDG (paper §3.2), in **nats per image**; zero unless ``soft``.

    weight · Σ_i |x_i − (Aŷ)_i| summed over every LR value of an image (channels × h × w), averaged
    over the batch: the negative log-likelihood of a Laplace observation model x = Aŷ + ε,
    ε_i ~ Laplace(0, b) with b = 1/weight (up to a constant). It is a per-image quantity because the
    objectives it is added to are: the GAN generator's loss estimates KL[q‖p] per image (Eq. 10) and the
    denoiser-guided loss is −log p_σ(ŷ) per image (Eq. 12). Objectives whose loss is an average per
    HR value (the pixel losses, AffLL's bits/dim) convert it with :func:`per_value`. So one weight means
    the same — the scale b of the assumed LR noise — for every objective. (Before, the penalty was a
    per-pixel *mean*, 20×–10⁴× weaker than the denoiser's per-image score: SoftDG collapsed.)

    Projected models are consistent by construction, unconstrained ones (``none``) are not asked to be.
    sr (B, C, H, W), lr (B, C, h, w) → a scalar.
    """
    if context.model.constraint != "soft":
        return sr.new_zeros(())
    residual = (context.model.op(sr) - lr).abs()
    return context.consistency_weight * residual.flatten(1).sum(1).mean()


def per_value(penalty: Tensor, sr: Tensor, bits: bool = False) -> Tensor:
    """A per-image penalty (nats) as an average per HR value (÷ C·H·W), in bits if ``bits``: the unit
    of the pixel losses and of AffLL's bits/dim. sr (B, C, H, W) or (B, D)."""
    scale = sr[0].numel() * (math.log(2.0) if bits else 1.0)
    return penalty / scale


def generator_networks(context: Context) -> dict[str, nn.Module]:
    """The trainable part of the SR model (the projection has no parameters)."""
    return {"generator": context.model}


def current_guide(context: Context, progress: float) -> Guide:
    """The snapshot curriculum (paper App. D): guides in turn, each for an equal share of training."""
    if not context.guides:
        raise ValueError("this objective needs guide snapshots: set the method's `guide` in params.yaml")
    index = min(int(progress * len(context.guides)), len(context.guides) - 1)
    return context.guides[index]
