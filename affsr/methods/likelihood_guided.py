"""AffLL / SoftLL: SR guided by a frozen density model (paper §3.4, Eq. ℓ = −log p(Π f_θ(x))).

The objective's name is its module's, ``likelihood_guided`` (``objective: likelihood_guided`` in params.yaml).

The generator lowers the negative log-likelihood of its outputs ŷ = g(x) under a density model trained
by the ``density_fit`` objective (the method's ``guide``), in bits/dim
(:meth:`~affsr.nets.density.DensityModel.cross_entropy_bits`, lower = more likely), plus the soft consistency
penalty where the constraint is ``soft``. The density model is frozen (``load_guides`` sets
``requires_grad_(False)``): gradients flow through ŷ into the generator only. Outputs are continuous, so
they are not dequantised. Following App. D, the guide snapshots are used in turn, each for an equal
share of training (earlier, lower-likelihood models first; see ``current_guide``) — without this
curriculum the paper's AffLL diverged; the label of the snapshot in use is logged as ``snapshot_label``.
The paper found AffLL's outputs blurry, scoring *higher* likelihood (> −3.5 bits/dim) than real data
(−4.10): the density model prefers smooth images.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from affsr.methods.base import Batch, Context, Phase, consistency_penalty, current_guide, generator_networks, per_value

GUIDED_BY = "density_fit"


@dataclass(frozen=True)
class Options:
    """No options of its own: the density model and its snapshots come from the ``guide`` run."""


class Objective:
    """One generator phase: mean bits/dim of ŷ under the current density snapshot (+ soft penalty)."""

    def __init__(self, context: Context):
        self.context = context
        self.networks = generator_networks(context)
        self.phases = [Phase("generator", "generator", self.loss)]

    def snapshot_label(self, progress: float) -> float:
        """Label (training progress of the density run) of the snapshot in use at ``progress``; the
        loop logs it as ``snapshot_label``. No snapshots of this objective's own are kept."""
        return float(current_guide(self.context, progress).label)

    def loss(self, batch: Batch, progress: float) -> Tensor:
        density = current_guide(self.context, progress).network
        sr = self.context.model(batch.lr)
        penalty = per_value(consistency_penalty(self.context, sr, batch.lr), sr, bits=True)
        return density.cross_entropy_bits(sr).mean() + penalty
