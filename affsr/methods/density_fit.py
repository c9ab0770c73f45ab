"""Maximum-likelihood fit of the density model that guides AffLL (paper §3.4, App. D/E).

An auxiliary objective: it trains one network, ``density`` (:class:`affsr.nets.density.DensityModel`), on the
HR images of its run's split and makes no SR outputs. Its loss is the mean negative log-likelihood of
the batch in bits/dim (:meth:`~affsr.nets.density.DensityModel.cross_entropy_bits`: −log2 p_[0,1](y)/D + 8),
so the logged ``loss_nll`` reads directly as bits/dim, lower = better (the paper's data figure, −4.10
bits/dim log-likelihood, is a loss of 4.10). Real 8-bit data are dequantised first
(:func:`affsr.nets.density.dequantize`, option ``dequantize``), which makes the number an upper bound on the
discrete negative log-likelihood and stops the continuous density from collapsing onto the 256 levels.

The study uses it twice, with the same objective: the model AffLL optimises against (``split: train``)
and a held-out model (``split: val``) used only to score SR outputs. ``snapshots`` labelled copies are
kept at k/snapshots of training, k = 1..snapshots (labels = training progress, increasing): AffLL loads
better density models as its own training proceeds (App. D's curriculum).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from affsr.methods.base import Batch, Context, Phase
from affsr.nets.density import dequantize

SUPER_RESOLVES = False


@dataclass(frozen=True)
class Options:
    """``snapshots``: how many labelled copies to keep (evenly spaced, the last at the end of training);
    ``dequantize``: add U[0, 1) level noise to the 8-bit HR data before scoring it (recommended)."""

    snapshots: int = 4
    dequantize: bool = True

    def __post_init__(self) -> None:
        if self.snapshots < 1:
            raise ValueError(f"snapshots: must be ≥ 1, got {self.snapshots}")


class Objective:
    """Lower the mean NLL (bits/dim) of the (dequantised) HR batch under the density model."""

    def __init__(self, context: Context):
        options = context.options  # ranges checked by Options
        self.context = context
        self.density = context.nets.density()
        self.networks = {"density": self.density}
        self.phases = [Phase("nll", "density", self.loss)]
        self.snapshot_points = [k / options.snapshots for k in range(1, options.snapshots + 1)]

    def snapshot_label(self, progress: float) -> float:
        """A snapshot is labelled by the training progress at which it was taken (increasing)."""
        return float(progress)

    def loss(self, batch: Batch, progress: float) -> Tensor:
        y = dequantize(batch.hr) if self.context.options.dequantize else batch.hr
        return self.density.cross_entropy_bits(y).mean()
