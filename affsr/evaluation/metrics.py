"""Every metric of the study as one record: how it is computed and how it is shown.

:data:`METRICS` is the one source of truth that evaluation (which metrics a method gets, in which order
they are written), the summary table, metrics.json, the README's tables, the metric figure and the claims
all read. Adding a metric is one function and one row here: evaluation computes it for every method it
applies to, ``results/metrics.csv`` carries it, and the tables and the figure show it.

The rows are in the order the study writes them: consistency (the paper's point: exact by construction),
distortion against the HR image, realism of the output set against the real images, several draws of a
stochastic generator, likelihood under a held-out density model.

Conventions every metric shares: images are (N, C, H, W) on the [0, 1] pixel scale, compared channel by
channel as given (no colour conversion), without a border crop, and **not clipped** — clipping would
change Aŷ and break a projected output's exact consistency, and a value outside [0, 1], which no 8-bit
image has, is itself a departure from real images that the realism metrics may use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from affsr.evaluation.c2st import c2st
from affsr.evaluation.consistency import lr_mse, lr_psnr_from_mse, lr_rel
from affsr.evaluation.distortion import psnr, ssim
from affsr.evaluation.likelihood import cross_entropy
from affsr.evaluation.spectrum import hf_ratio, spectrum_distance
from affsr.evaluation.swd import swd
from affsr.operators.downsampling import Downsampling

#: What a metric needs of an evaluated method (:attr:`Metric.needs`):
#: ``pairs``   — outputs paired with their HR images and LR inputs (not the real-data floor, which has none);
#: ``sets``    — a set of outputs against a set of real images (every method, and the real-data floor);
#: ``draws``   — several outputs per input (a stochastic generator);
#: ``density`` — the held-out density model (when the study names one).
NEEDS = ("pairs", "sets", "draws", "density")


@dataclass
class Scored:
    """What the metrics see of one evaluated method on one test split.

    ``outputs`` (N, C, H, W): its outputs ŷ (the first draw of a stochastic generator); for the real-data
    floor the real HR images themselves. ``lr`` (N, C, h, w) and ``hr`` (N, C, H, W) pair them with their
    inputs and targets (None for the floor). ``compared`` and ``real`` are the two sets the realism
    metrics compare: the outputs and the split's real images, or for the floor two disjoint halves of the
    real images; ``groups`` keeps near-duplicate patches in one c2st fold. ``draws`` (N, K, C, H, W): every
    draw of a stochastic generator. ``density``: the held-out density model; ``dequantize`` its 8-bit
    noise for real images. ``seed`` and ``c2st_steps`` fix the realism metrics' draws and classifier.
    """

    outputs: torch.Tensor
    op: Downsampling
    compared: torch.Tensor
    real: torch.Tensor
    lr: torch.Tensor | None = None
    hr: torch.Tensor | None = None
    groups: np.ndarray | None = None
    draws: torch.Tensor | None = None
    density: torch.nn.Module | None = None
    dequantize: bool = False
    seed: int = 0
    c2st_steps: int = 200

    def has(self, need: str) -> bool:
        """Whether this method has what a metric of ``need`` (one of :data:`NEEDS`) uses."""
        return {"pairs": self.hr is not None, "sets": True, "draws": self.draws is not None,
                "density": self.density is not None}[need]


#: ``compute(scored, done)`` → the value; ``done`` holds the metrics computed before it, in table order.
Compute = Callable[[Scored, dict], float]


@dataclass(frozen=True)
class Metric:
    """One metric: its function, what it needs, its direction, and how tables and figures show it.

    ``table_format``: the summary table's format (``str.format``); ``readme_format``: the README's
    per-domain tables' ("" = not shown there); ``label``: the figure's axis label (unit and direction);
    ``log_scale``: spans many decades down to exact zeros — a log axis, and a log10 copy in
    metrics.json (``dvc metrics show`` rounds to a few decimals); ``unit``: appended to a margin.
    """

    name: str
    compute: Compute
    needs: str
    higher_is_better: bool
    label: str
    table_format: str = "{:.2e}"
    readme_format: str = ""
    log_scale: bool = False
    unit: str = ""

    def __post_init__(self) -> None:
        if self.needs not in NEEDS:
            raise ValueError(f"metric {self.name}: needs must be one of {NEEDS}, got {self.needs!r}")


def _c2st(s: Scored, done: dict) -> float:
    return c2st(s.compared, s.real, seed=s.seed, groups=s.groups, steps=s.c2st_steps)


def _c2st_se(s: Scored, done: dict) -> float:
    """The binomial standard error √(p(1 − p)/2N) of the held-out accuracy p over its 2N test decisions:
    with the 13 test faces of the demo ≈ 0.1, so c2st differences below ≈ 0.2 mean nothing there."""
    accuracy = done["c2st"]
    return math.sqrt(accuracy * (1.0 - accuracy) / (2 * len(s.compared)))


def _diversity(s: Scored, done: dict) -> float:
    """Mean over inputs and pairs of draws of the RMS difference between two draws (0 = one answer per
    input, mode collapse; on the [0, 1] pixel scale)."""
    k = s.draws.shape[1]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    rms = [(s.draws[:, i] - s.draws[:, j]).double().square().flatten(1).mean(1).sqrt() for i, j in pairs]
    return float(torch.stack(rms).mean())


def _lr_mse_draws(s: Scored, done: dict) -> float:
    """The largest lr_mse of any single draw: every answer must be consistent, not only the first."""
    return max(lr_mse(s.draws[:, i], s.lr, s.op) for i in range(s.draws.shape[1]))


def _cross_entropy(s: Scored, done: dict) -> float:
    device = next(s.density.parameters()).device
    return cross_entropy(s.density, s.outputs.float().to(device), dequantize=s.dequantize)


#: Every metric, in the order the study computes and writes them (see the module docstring).
METRICS: tuple[Metric, ...] = (
    Metric("lr_mse", lambda s, done: lr_mse(s.outputs, s.lr, s.op), "pairs", False,
           "LR-consistency MSE ↓", readme_format="{:.1e}", log_scale=True),
    Metric("lr_rel", lambda s, done: lr_rel(s.outputs, s.lr, s.op), "pairs", False,
           "LR-consistency rel. error ↓", log_scale=True),
    Metric("lr_psnr", lambda s, done: lr_psnr_from_mse(done["lr_mse"]), "pairs", True,
           "LR-consistency PSNR (dB) ↑", table_format="{:.1f}", unit=" dB"),
    Metric("psnr", lambda s, done: psnr(s.outputs, s.hr), "pairs", True, "PSNR (dB) ↑",
           table_format="{:.2f}", readme_format="{:.2f}", unit=" dB"),
    Metric("ssim", lambda s, done: ssim(s.outputs, s.hr), "pairs", True, "SSIM ↑",
           table_format="{:.3f}", readme_format="{:.3f}"),
    # 64 patches per image (not Karras's 128): the same values to ±1 % on the demo sets, half the time
    Metric("swd", lambda s, done: swd(s.compared, s.real, seed=s.seed, patches_per_image=64), "sets", False,
           "sliced Wasserstein distance (×10³) ↓", table_format="{:.1f}", readme_format="{:.0f}"),
    Metric("spectrum_distance", lambda s, done: spectrum_distance(s.compared, s.real), "sets", False,
           "spectrum distance (decades) ↓", table_format="{:.3f}", readme_format="{:.2f}"),
    # power above the LR Nyquist frequency 1/(2·scale); 1 = the real images', < 1 blur, > 1 noise
    Metric("hf_ratio", lambda s, done: hf_ratio(s.compared, s.real, cutoff=0.5 / s.op.scale), "sets", False,
           "high-frequency power / real (1 = real)", table_format="{:.3f}"),
    Metric("c2st", _c2st, "sets", False, "c2st accuracy (0.5 = real) ↓", table_format="{:.3f}",
           readme_format="{:.2f}"),
    Metric("c2st_se", _c2st_se, "sets", False, "c2st standard error"),
    Metric("diversity", _diversity, "draws", True, "diversity of draws (RMS) ↑"),
    Metric("lr_mse_draws", _lr_mse_draws, "draws", False, "worst draw's LR-consistency MSE ↓", log_scale=True),
    Metric("cross_entropy", _cross_entropy, "density", False, "held-out cross-entropy (bits/dim) ↓",
           table_format="{:.3f}", readme_format="{:.2f}", unit=" bits/dim"),
)

METRIC_ORDER: tuple[str, ...] = tuple(m.name for m in METRICS)
BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


def compute_metrics(scored: Scored) -> dict[str, float]:
    """Every metric of :data:`METRICS` that ``scored`` has what it needs for, in table order."""
    done: dict[str, float] = {}
    for metric in METRICS:
        if scored.has(metric.needs):
            done[metric.name] = metric.compute(scored, done)
    return done
