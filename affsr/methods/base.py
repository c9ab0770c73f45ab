"""What every objective receives and returns: the batch, the context, and its phases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor, nn

from affsr.nets import SRModel


@dataclass
class Batch:
    """One training batch, already on the training device.

    ``lr`` (B, C, h, w) and ``hr`` (B, C, H, W) are paired (x = A y); ``hr_unpaired`` (B, C, H, W) is an
    independent draw of HR images — the GAN's "real" samples, since AffGAN needs only the marginals.
    """

    lr: Tensor
    hr: Tensor
    hr_unpaired: Tensor


@dataclass
class Context:
    """Everything an objective may use to build itself; no files, no device choice."""

    model: SRModel
    options: object
    consistency_weight: float
    channels: int
    hr_size: int
    settings: object  # affsr.config.RunSettings, for network sizes


@dataclass
class Phase:
    """One optimiser step of a training step: lower ``loss(batch, progress)`` w.r.t. ``network``.

    ``progress`` runs from 0 to 1 over training (for schedules such as instance-noise annealing).
    """

    name: str
    network: str
    loss: Callable[[Batch, float], Tensor]


def consistency_penalty(context: Context, sr: Tensor, lr: Tensor) -> Tensor:
    """Soft constraint of SoftGAN/SoftDG (paper §3.2): weight · mean |x − Aŷ|; zero otherwise.

    Projected models are consistent by construction, unconstrained ones (``none``) are not asked to be.
    """
    if context.model.constraint != "soft":
        return sr.new_zeros(())
    return context.consistency_weight * (context.model.op(sr) - lr).abs().mean()


def generator_networks(context: Context) -> dict[str, nn.Module]:
    """The trainable part of the SR model (the projection has no parameters)."""
    return {"generator": context.model}


__all__ = ["Batch", "Context", "Phase", "consistency_penalty", "generator_networks"]
