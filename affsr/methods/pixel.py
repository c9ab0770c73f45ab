"""Pixel losses: the MSE/MAE baselines (constraint ``none``) and AffMSE (``projected``).

ERM with a pixel loss (paper Eq. 1): its Bayes-optimal output is the posterior mean (l2) or median
(l1) — the blurry average the paper argues against. Needs paired (x, y) data.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from affsr.methods.base import Batch, Context, Phase, consistency_penalty, generator_networks, per_value


@dataclass(frozen=True)
class Options:
    """``loss``: ``l2`` (MSE) or ``l1`` (MAE)."""

    loss: str = "l2"

    def __post_init__(self) -> None:
        if self.loss not in ("l1", "l2"):
            raise ValueError(f"loss: '{self.loss}' is not one of: l1, l2")


class Objective:
    """Lower the mean pixel loss between ŷ = g(x) and the paired HR image y."""

    def __init__(self, context: Context):
        self.context = context
        self.networks = generator_networks(context)
        self.phases = [Phase("pixel", "generator", self.loss)]

    def loss(self, batch: Batch, progress: float) -> Tensor:
        sr = self.context.model(batch.lr)
        error = sr - batch.hr
        pixel = error.square().mean() if self.context.options.loss == "l2" else error.abs().mean()
        return pixel + per_value(consistency_penalty(self.context, sr, batch.lr), sr)
