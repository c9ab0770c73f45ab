"""The denoising auto-encoder of AffDG/SoftDG, trained on a σ curriculum (paper App. D, Eq. 12).

Training (App. D): ℓ_DAE = mean ‖D(y + σε) − y‖², ε ~ N(0, I), y an HR training image and σ the noise
*standard deviation* on the [0, 1] pixel scale (the appendix writes N(0, σI), std vs variance ambiguous;
paper.md §3.4). We average over the batch and the pixels — the paper's (1/N) Σ‖·‖² divided by the
number of pixels: the same minimiser, and a logged loss comparable with σ² (the identity's loss).

By Eq. 12 (Alain & Bengio 2014) the optimal D_σ gives the score of the σ-smoothed prior,
(D_σ(y) − y)/σ² ≈ ∇_y log p_σ(y), which :mod:`affsr.methods.denoiser_guided` ascends.

Curriculum (App. D: "anneal σ during DAE training and keep snapshots at decreasing σ"): training is
split into ``snapshots`` equal segments; σ is constant within a segment and decreases geometrically
from ``sigma_start`` (first segment) to ``sigma_end`` (last segment), σ_k = σ_start·(σ_end/σ_start)^(k/(K−1)).
The network is copied at the end of each segment and the copy labelled with the σ it was trained at;
the guided generator later loads these snapshots in order (large σ first: rough, wide-coverage scores;
small σ last: precise scores near the data). The paper's schedules: toy 0.5 → 0.25, grass 0.5 → 0.01;
the number of snapshots and the spacing are not stated (geometric is our choice).

The loop places snapshots at step round(k/K · steps) and labels each with the σ at that step's progress
(step − 1)/steps, the σ its last update used. With ``steps`` a multiple of ``snapshots`` (or at least
1.5·``snapshots``) this gives exactly one snapshot per segment; with fewer steps than that some segments
share a snapshot (labels still name the σ actually trained, but some σ are missing).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from affsr.methods.base import Batch, Context, Phase

SUPER_RESOLVES = False


@dataclass(frozen=True)
class Options:
    """Noise std (pixel scale [0, 1]) of the first and of the last segment, and the number of segments
    (= snapshots kept for the guided generator)."""

    sigma_start: float = 0.5
    sigma_end: float = 0.01
    snapshots: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.sigma_end <= self.sigma_start:
            raise ValueError(f"sigma_end: must be in (0, sigma_start = {self.sigma_start}], got {self.sigma_end}")
        if self.snapshots < 1:
            raise ValueError(f"snapshots: must be ≥ 1, got {self.snapshots}")
        if self.snapshots == 1 and self.sigma_end != self.sigma_start:
            raise ValueError("snapshots: 1 segment has one σ; set sigma_end = sigma_start, or more snapshots")


def sigma_schedule(options: Options) -> list[float]:
    """σ of each segment, in training order: geometric from ``sigma_start`` to ``sigma_end``."""
    k = options.snapshots
    if k == 1:
        return [float(options.sigma_start)]
    ratio = options.sigma_end / options.sigma_start
    return [float(options.sigma_start * ratio ** (i / (k - 1))) for i in range(k)]


class Objective:
    """Train the denoiser D on noisy HR images, σ lowered segment by segment; snapshot each segment."""

    def __init__(self, context: Context):
        self.context = context
        self.sigmas = sigma_schedule(context.options)
        self.denoiser = context.nets.denoiser()
        self.networks = {"denoiser": self.denoiser}
        self.phases = [Phase("denoise", "denoiser", self.loss)]
        k = len(self.sigmas)
        self.snapshot_points = [(i + 1) / k for i in range(k)]

    def segment(self, progress: float) -> int:
        """Index of the curriculum segment that ``progress`` ∈ [0, 1] falls in."""
        k = len(self.sigmas)
        return min(max(int(progress * k), 0), k - 1)

    def sigma(self, progress: float) -> float:
        """The noise std used for training at ``progress``."""
        return self.sigmas[self.segment(progress)]

    def snapshot_label(self, progress: float) -> float:
        """A snapshot taken after the step at ``progress`` is labelled with the σ that step trained at."""
        return self.sigma(progress)

    def loss(self, batch: Batch, progress: float) -> Tensor:
        y = batch.hr
        sigma = self.sigma(progress)
        noisy = y + sigma * torch.randn_like(y)
        return (self.denoiser(noisy) - y).square().mean()
