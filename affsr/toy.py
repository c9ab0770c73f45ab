"""The 2-D toy MAP experiment (paper §5.1, Table 1, Figure 1; paper.md §4).

HR "images" are points y ∈ R² of a noisy Swiss roll, the "LR image" is the scalar x = (y₁ + y₂)/2,
i.e. A = [½ ½] and A⁺ = [1 1]ᵀ. Every solution set {y : Ay = x} is a line y = A⁺x + t·v with
v = [1, −1]/√2 (the null space of A), and the posterior p(y | x) is the prior's slice along that line.
Ground truth is a Gaussian KDE (bandwidth 0.2) of 50,000 samples of the *noise-free* roll; the exact
MAP is found by brute force along each line; methods are scored by the cross-entropy
H[q_θ, p_Y] = −E_x log p_KDE(ŷ(x)) in **nats** and by the consistency ℓ_MSE(x, Aŷ) = mean (x − Aŷ)²,
on the same fresh draws x ~ p_X for every model. Beside the paper's rows we score the Bayes-optimal
estimators of the MSE and MAE losses, the posterior mean and median (brute force like the MAP): they
tell a loss whose optimum lies off the roll (the mean) from a net that has not reached its optimum.

Every method trains through the shared loop (:func:`affsr.train.fit`) and the same objective classes as
the image study; only the model, the networks and the batches are 2-D here:

======== ===================== ============ =================================================
method   objective             constraint   notes
======== ===================== ============ =================================================
mse      pixel (l2)            none         paired (x, y)
mae      pixel (l1)            none         paired (x, y)
affgan   gan                   projected    instance noise 1 → 0.2; 20 D steps per G step;
                                            unpaired y as the "real" samples
softgan  gan                   soft         + soft penalty weight·|x − Aŷ| (``consistency_weight``)
affdg    denoiser_guided       projected    guided by frozen DAE snapshots (σ 0.5 → 0.25)
softdg   denoiser_guided       soft         + soft penalty (the same ``consistency_weight``)
======== ===================== ============ =================================================

AffDG/SoftDG: each restart first trains ONE denoiser (objective ``dae``, σ annealed in segments) through
the same loop; its snapshots become frozen :class:`~affsr.methods.base.Guide` s (label σ) for both.

Restarts as an ensemble. The networks are tiny, so a step of the loop costs ~1 ms of Python overhead
whatever the batch; ten separate runs per method would not fit a 3-minute CPU budget. All ``restarts`` of a
method therefore train in ONE ``fit`` run, as an ensemble of independently initialised networks
(:class:`EnsembleMLP`, batched matrix products) fed independent batch blocks: every loss the objectives
compute is a mean over the batch, so each member receives exactly the gradient it would get alone, scaled
by 1/restarts, which Adam's per-parameter step removes (tested). Restart r is ``ensemble.member(r)``.
The discriminator and the denoiser are ensembles of the same size (member r with member r).

What the paper leaves open (paper.md §4 "[not stated]": optimiser, steps, batch, activations, instance
noise, soft-penalty weight, number of DAE snapshots) is a :class:`ToyConfig` field, documented there;
fixed choices: generator ReLU with input x/3 (standardised), discriminator LeakyReLU(0.2), denoiser
SiLU (a smooth score field; with ReLU 2–3 of 10 AffDG restarts ran off along the null space, pushed by
the small-σ snapshots' extrapolated far field — see also ``beta2`` and ``dg_noise_input``).

How the KDE is evaluated (float64 unless stated):

* :meth:`RollKDE.log_density` — the exact KDE, chunked log-sum-exp over all samples (the reference;
  ~1 ms per point on a 2-core CPU, too slow for the ~10⁵ points of a study).
* On product grids the Gaussian kernel factorises, so the KDE on a whole grid is ONE matrix product
  (:meth:`RollKDE.grid_log_density`; float32 products, float64 sums): used for (a) the brute-force MAP
  search in the line coordinates (x, t) of y = A⁺x + t·v, where ‖y − s‖² = 2(x − a_s)² + (t − t_s)² with
  a_s = A s, t_s = v·s, and (b) a table of log p on a fine axis-aligned grid.
* :meth:`RollKDE.fast_log_density` — bilinear interpolation of that table (log space), used for the
  cross-entropy of model outputs; points off the table or where float32 underflow could matter
  (log p ≲ −67) fall back to the exact KDE. Measured against the exact KDE at step 0.02: ≲ 2·10⁻³ nats
  on the roll (mean ≈ 10⁻³), far below the two decimals reported.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from affsr.config import TrainConfig, from_dict
from affsr.methods import objective_class, options_class
from affsr.methods.base import Batch, Context, Guide

__all__ = [
    "ToyConfig",
    "ToyOperator",
    "ToyModel",
    "ToyDenoiser",
    "ToyNetworks",
    "EnsembleMLP",
    "RollKDE",
    "METHODS",
    "DISPLAY_NAMES",
    "BAYES_ROWS",
    "PAPER_TABLE1",
    "sample_roll",
    "roll_batch_sampler",
    "map_estimates",
    "line_estimates",
    "line_posterior",
    "train_denoisers",
    "train_method",
    "run_toy_study",
    "table1",
]

NU1_MEAN, NU1_STD, NU2_STD, RADIUS_SLOPE = 10.0, 3.0, 0.2, 0.4
#: The generator sees x / X_SCALE (x has std ≈ 2.8 under p_X): standardised input, so the ReLU kinks
#: of the default initialisation (within ~1 of 0) spread over the data instead of its middle third.
X_SCALE = 3.0
#: Kernel sums below this are not trusted from a float32 product (single terms may underflow there).
_F32_EXACT = 1e-25
#: Null-space direction of A = [½ ½]: solution lines are y = A⁺x + t·V.
V = (1.0 / math.sqrt(2.0), -1.0 / math.sqrt(2.0))


# ------------------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class ToyConfig:
    """Settings of the toy study. Defaults are the CPU demo: all 10 restarts of all methods in ≈ 3 min
    on one core of the 2-core development machine (``torch.set_num_threads(1)``; the two GANs, at 20
    discriminator steps per generator step, take about two thirds of it).

    Paper-given: ``restarts`` 10, ``hidden`` 64 (generator and discriminator: 2 FC layers × 64),
    ``dae_hidden`` 256 (DAE: 2 FC × 256), DAE σ 0.5 → 0.25, ``kde_samples`` 50,000, ``kde_bandwidth`` 0.2.
    Everything else is not stated in the paper and chosen here.
    """

    #: Random restarts per method (paper: 10); results are mean ± std over them. All restarts of a
    #: method train together in one run of the shared loop, as an ensemble of independent networks.
    restarts: int = 10
    #: Generator training steps of MSE, AffDG and SoftDG (GAN: ``gan_steps``; MAE: ``mae_steps``).
    steps: int = 1500
    #: Batch size per restart (x, y and unpaired y drawn fresh from the roll every step).
    batch_size: int = 128
    #: Adam learning rate of the pixel-loss, DAE and denoiser-guided runs.
    lr: float = 1e-3
    #: Adam β₁ of those runs (0.9; with 0.5 AffDG restarts ran away along the null space more often).
    beta1: float = 0.9
    #: Adam β₂ of those runs. 0.99, not 0.999: the guided generator's gradient grows ×(σ_k/σ_{k+1})² at
    #: each DAE snapshot switch (the score scales as 1/σ²); with β₂ = 0.999 Adam's second moment lags by
    #: ~1000 steps, the effective step grows up to 4× by the last snapshot, and 1–2 of 10 AffDG restarts
    #: ran off into the DAE's extrapolated far field (seeds 1 and 3; none of 30 restarts with 0.99).
    beta2: float = 0.99
    #: MAE's own training steps and Adam learning rate. The L1 loss converges slowly: its gradient is
    #: sign-like (each sample pushes with unit force, E = 2F(ŷ) − 1, small near the median and noisy),
    #: and its Bayes estimator, the posterior median, jumps from arm to arm of the roll as x changes,
    #: which the smooth net approaches only gradually. Measured (seed 0, H in nats; posterior median
    #: 4.39, posterior mean 8.41): lr 1e-3 × 1500 steps 8.21 ± 0.16 (the MSE-like start, mean
    #: |ŷ − median| 0.97); 3e-3 × 1500 7.81; 1e-2 × 1500 6.91 ± 0.84; 1e-3 × 4500 6.90; 3e-3 × 3000
    #: 6.56 ± 0.21 (|ŷ − median| 0.63); 1e-2 × 3000 6.43 ± 0.33; 3e-3 × 9000 6.49 ± 0.32 (0.58): H
    #: plateaus near the paper's 6.30 well above the median's, the net still bridging the gaps between
    #: arms where the median jumps. β₁ 0.5 instead of 0.9 changed nothing (8.20).
    mae_steps: int = 3000
    mae_lr: float = 3e-3
    #: Generator steps of the GAN runs (each with ``d_steps`` discriminator steps before it): fewer than
    #: ``steps`` because a GAN step costs d_steps + 1 optimiser steps (≈ 60 s per GAN method at 20 + 1).
    gan_steps: int = 750
    #: Adam learning rate of the GAN runs (generator and discriminator alike).
    gan_lr: float = 2e-3
    #: Adam β₁ of the GAN runs (0.5, the usual GAN choice; 0.9 was less stable here). β₂ = 0.999.
    gan_beta1: float = 0.5
    #: Width of the generator's and the discriminator's two hidden layers (paper: 64).
    hidden: int = 64
    #: Width of the DAE's two hidden layers (paper: 256).
    dae_hidden: int = 256
    #: DAE training steps (one DAE per restart, shared by AffDG and SoftDG of that restart). The guided
    #: generators inherit the DAE's flaws: restarts that do badly under AffDG and SoftDG alike are the
    #: ones with a poor denoiser member. Measured AffDG H (seed 0; nats; paper 3.81): 1000 steps
    #: 4.32 ± 0.65 (two restarts ≈ 5.4); 2000 steps 3.59 ± 0.43 (+15 s); 1000 DAE steps with 3000
    #: generator steps instead 6.14 ± 5.75 (one restart ran off to 22).
    dae_steps: int = 2000
    #: DAE noise std of the first curriculum segment (paper: 0.5).
    dae_sigma_start: float = 0.5
    #: DAE noise std of the last segment (paper: 0.25).
    dae_sigma_end: float = 0.25
    #: DAE curriculum segments = snapshots guiding the generator in turn (geometric σ spacing).
    dae_snapshots: int = 4
    #: Evaluate the denoiser at ŷ + σε (where it was trained) rather than at ŷ (``denoiser_guided``
    #: option ``noise_input``). True: at ŷ, 1–2 of 10 AffDG restarts drifted off into the DAE's
    #: extrapolated far field.
    dg_noise_input: bool = True
    #: GAN instance-noise std at the start, in data units (the roll spans ≈ ±9).
    instance_noise: float = 1.0
    #: GAN instance-noise std at the end of the annealing, then held (``gan`` option ``noise_end``). Not
    #: 0: the generator's outputs lie on a curve, where the noise-free KL to the 2-D prior is infinite
    #: and the discriminator separates real from fake perfectly (saturated, no guidance left).
    noise_end: float = 0.2
    #: Fraction of training over which the instance noise anneals linearly to ``noise_end``.
    noise_anneal: float = 0.5
    #: Discriminator steps per generator step. The learned D is the bottleneck: G follows D's logit,
    #: which estimates log p/q only where D is near-optimal. Measured AffGAN H (seed 0, 10 restarts;
    #: nats; paper 4.10): d_steps 1, noise 1 → 0 over all of 1500 steps 9.48 ± 3.30 (the old default);
    #: d 10, 1 → 0.2, 1500 steps 6.13 ± 2.96; d 20, 1 → 0.2, 1500 steps 4.87 ± 1.42 (≈ 120 s); d 20,
    #: 1 → 0.2, 750 steps 4.65 ± 0.60; the same with 1 → 0.3 4.48 ± 0.60; d 20, 1 → 0.2 reached at half
    #: of 750 steps, then held (the defaults) 4.32 ± 0.54. An outside review saw no gain from d_steps or
    #: the noise floor alone.
    d_steps: int = 20
    #: Weight w of the soft penalty w·|x − Aŷ| of SoftGAN and SoftDG, one value for both (the same
    #: meaning: a Laplace observation NLL of scale b = 1/w, in nats per point like the objectives it is
    #: added to; :func:`~affsr.methods.base.consistency_penalty`). Rule: the smallest w of 1, 4, 16, 64
    #: that keeps both soft models on their solution lines (ℓ_MSE < 0.01). Measured (10 restarts; H nats
    #: ± std over restarts, ℓ_MSE; paper SoftGAN 4.25, 0.089; SoftDG 4.19, 0.101):
    #: SoftGAN, seed 0: w 1: 4.32 ± 0.52, 0.19; w 1.5: 4.26 ± 0.56, 0.086; w 4: 5.56 ± 1.13, 6.9e-3
    #: (seed 1: w 1.5: 4.54 ± 0.69, 0.10; w 4: 5.33 ± 1.03, 3.0e-3).
    #: SoftDG, seed 0 (2000-step DAE): w 1: 3.51 ± 0.45, 0.90 (outputs leave their lines for the nearest
    #: arm, ignoring x: the low H is no solution); w 1.5: 3.64 ± 0.63, 0.15; w 2: 3.61 ± 0.57, 0.052;
    #: w 4: 4.74 ± 1.49, 1.0e-3; w 16: 6.77 ± 1.09, 8e-5; w 64: 7.60 ± 0.63, 7e-5 (seed 1: w 1.5:
    #: 3.35 ± 0.29, 0.11). Large w: the sign-like penalty gradient dominates Adam's normalisation and
    #: the outputs barely move along their lines. So the paper's order (projected below soft) depends
    #: on w: at the w that reproduces the paper's soft ℓ_MSE (≈ 1.5) AffGAN and SoftGAN tie within the
    #: restart spread and SoftDG beats AffDG by leaving its lines; at w = 4 both projected models win.
    consistency_weight: float = 4.0
    #: Noise-free roll samples of the ground-truth KDE (paper: 50,000).
    kde_samples: int = 50_000
    #: KDE bandwidth = std of the isotropic Gaussian kernel (paper: 0.2).
    kde_bandwidth: float = 0.2
    #: Grid step of the log-density table that scores model outputs (bilinear interpolation).
    kde_grid_step: float = 0.02
    #: Fresh noisy-roll draws x ~ p_X on which every model (and the MAP) is scored.
    eval_samples: int = 1000
    #: Step in t of the brute-force MAP search along each solution line.
    map_step: float = 0.02
    #: Points of the x ∈ [−8, 8] grid of the figure (MAP curve, each method's outputs).
    curve_points: int = 321
    #: Methods to train, a subset of :data:`METHODS` in any order.
    methods: tuple[str, ...] = ("mse", "mae", "affgan", "softgan", "affdg", "softdg")
    #: Training device ("cpu" or "cuda"); evaluation always runs on the CPU in float64.
    device: str = "cpu"

    def __post_init__(self) -> None:
        problems = []
        for key in ("restarts", "steps", "mae_steps", "gan_steps", "batch_size", "hidden", "dae_hidden", "dae_steps",
                    "dae_snapshots", "kde_samples", "eval_samples", "curve_points", "d_steps"):
            if getattr(self, key) < 1:
                problems.append(f"{key} must be ≥ 1, got {getattr(self, key)}")
        for key in ("beta1", "beta2", "gan_beta1"):
            if not 0 <= getattr(self, key) < 1:
                problems.append(f"{key} must be in [0, 1), got {getattr(self, key)}")
        for key in ("lr", "mae_lr", "gan_lr", "kde_bandwidth", "kde_grid_step", "map_step", "dae_sigma_start",
                    "dae_sigma_end"):
            if not getattr(self, key) > 0:
                problems.append(f"{key} must be > 0, got {getattr(self, key)}")
        if not 0 <= self.noise_end <= self.instance_noise:
            problems.append(f"noise_end must be in [0, instance_noise = {self.instance_noise}], got {self.noise_end}")
        for key in ("instance_noise", "consistency_weight"):
            if getattr(self, key) < 0:
                problems.append(f"{key} must be ≥ 0, got {getattr(self, key)}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            problems.append(f"methods: unknown {unknown}; known: {', '.join(METHODS)}")
        if problems:
            raise ValueError("ToyConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict) -> "ToyConfig":
        """Strictly from a mapping (unknown keys are errors naming the closest field)."""
        return from_dict(cls, data, "toy")


#: method → (objective, constraint). Options come from :class:`ToyConfig` (see ``_options``).
METHODS: dict[str, tuple[str, str]] = {
    "mse": ("pixel", "none"),
    "mae": ("pixel", "none"),
    "affgan": ("gan", "projected"),
    "softgan": ("gan", "soft"),
    "affdg": ("denoiser_guided", "projected"),
    "softdg": ("denoiser_guided", "soft"),
}
DISPLAY_NAMES = {"map": "MAP", "mse": "MSE", "mae": "MAE", "affgan": "AffGAN", "softgan": "SoftGAN",
                 "affdg": "AffDG", "softdg": "SoftDG", "posterior_mean": "posterior mean",
                 "posterior_median": "posterior median"}
#: Rows of ours beyond the paper's: the Bayes-optimal estimators under squared error (what MSE training
#: should approach) and absolute error (MAE's), by brute force along each solution line like the MAP
#: (:func:`line_estimates`), scored on the same draws. They tell a net that has not converged from a
#: loss whose optimum itself sits off the roll. No paper values ("–").
BAYES_ROWS = ("posterior_mean", "posterior_median")

#: Table 1 of the paper: H[q_θ, p_Y] (nats, presumably) and ℓ_MSE(x, Aŷ); NaN where the paper has "–".
PAPER_TABLE1: dict[str, dict[str, float]] = {
    "map": {"cross_entropy": 3.15, "lr_mse": math.nan},
    "mse": {"cross_entropy": 9.10, "lr_mse": 1.25e-2},
    "mae": {"cross_entropy": 6.30, "lr_mse": 4.04e-2},
    "affgan": {"cross_entropy": 4.10, "lr_mse": 0.0},
    "softgan": {"cross_entropy": 4.25, "lr_mse": 8.87e-2},
    "affdg": {"cross_entropy": 3.81, "lr_mse": 0.0},
    "softdg": {"cross_entropy": 4.19, "lr_mse": 1.01e-1},
}


def _options(method: str, cfg: ToyConfig) -> object:
    objective, _ = METHODS[method]
    values = {
        "pixel": {"loss": "l1" if method == "mae" else "l2"},
        "gan": {"instance_noise": cfg.instance_noise, "noise_end": cfg.noise_end, "noise_anneal": cfg.noise_anneal,
                "d_steps": cfg.d_steps},
        "denoiser_guided": {"noise_input": cfg.dg_noise_input},
    }[objective]
    return from_dict(options_class(objective), values, f"toy.{method}.options")


# -------------------------------------------------------------------------------------------- data


def sample_roll(n: int, generator: torch.Generator, noisy: bool = True,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """``n`` Swiss-roll points (n, 2) on the CPU: ν₁ ~ N(10, 3²), ν₂ ~ N(0, 0.2²) (0 if not ``noisy``),
    r = 0.4ν₁ + ν₂, y = [r cos ν₁, r sin ν₁]. The second argument of N in the paper is read as a std."""
    nu1 = NU1_MEAN + NU1_STD * torch.randn(n, generator=generator, dtype=torch.float64)
    radius = RADIUS_SLOPE * nu1
    if noisy:
        radius = radius + NU2_STD * torch.randn(n, generator=generator, dtype=torch.float64)
    return torch.stack([radius * torch.cos(nu1), radius * torch.sin(nu1)], dim=1).to(dtype)


class ToyOperator:
    """A = [½ ½]: y (B, 2) → x (B, 1). A⁺ = [1 1]ᵀ is the exact Moore–Penrose inverse (AAᵀ = ½)."""

    def __call__(self, y: Tensor) -> Tensor:
        if y.ndim != 2 or y.shape[1] != 2:
            raise ValueError(f"ToyOperator: expected y of shape (B, 2), got {tuple(y.shape)}")
        return 0.5 * (y[:, :1] + y[:, 1:])

    def pinv(self, x: Tensor) -> Tensor:
        """A⁺x = [x, x] (A⁺ = Aᵀ(AAᵀ)⁻¹ = [½ ½]ᵀ / ½)."""
        self._check_lr(x)
        return torch.cat([x, x], dim=1)

    def adjoint(self, x: Tensor) -> Tensor:
        """Aᵀx = [x/2, x/2]."""
        self._check_lr(x)
        return torch.cat([0.5 * x, 0.5 * x], dim=1)

    @staticmethod
    def _check_lr(x: Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != 1:
            raise ValueError(f"ToyOperator: expected x of shape (B, 1), got {tuple(x.shape)}")

    def describe(self) -> dict:
        return {"kind": "toy", "matrix": [[0.5, 0.5]]}

    def __repr__(self) -> str:
        return "ToyOperator(A=[0.5 0.5])"


class EnsembleLinear(nn.Module):
    """``members`` independent affine maps applied blockwise: h (members, b, inputs) → (members, b, outputs).

    Each member is initialised like ``nn.Linear`` (weights and bias ~ U(±1/√inputs)).
    """

    def __init__(self, members: int, inputs: int, outputs: int):
        super().__init__()
        bound = 1.0 / math.sqrt(inputs)
        self.weight = nn.Parameter(torch.empty(members, inputs, outputs).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, outputs).uniform_(-bound, bound))

    def forward(self, h: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, h, self.weight)


class EnsembleMLP(nn.Module):
    """'2 FC layers × width' (paper): two hidden layers of ``width`` units, then a linear read-out —
    ``members`` independent copies of it, evaluated together.

    Input (B, inputs) is split into ``members`` consecutive blocks of B/members rows; block r goes
    through copy r. With ``members = 1`` this is a plain MLP. The copies share nothing, so training the
    ensemble on a loss that is a mean over the whole batch trains each copy exactly as on its own block
    (Adam's step is per parameter and invariant to the 1/members scale of each copy's gradient).
    """

    def __init__(self, inputs: int, width: int, outputs: int, members: int = 1,
                 activation: type[nn.Module] | None = None):
        super().__init__()
        make = activation or nn.ReLU
        self.members = members
        self.layers = nn.ModuleList([EnsembleLinear(members, inputs, width), EnsembleLinear(members, width, width),
                                     EnsembleLinear(members, width, outputs)])
        self.activations = nn.ModuleList([make(), make()])

    def forward(self, z: Tensor) -> Tensor:
        batch = z.shape[0]
        if batch % self.members:
            raise ValueError(f"EnsembleMLP: batch {batch} is not a multiple of members {self.members}")
        h = z.reshape(self.members, batch // self.members, z.shape[1])
        for layer, activation in zip(self.layers, self.activations):
            h = activation(layer(h))
        return self.layers[-1](h).reshape(batch, -1)

    def member(self, index: int) -> "EnsembleMLP":
        """Copy ``index`` as a stand-alone (``members = 1``) network."""
        if not 0 <= index < self.members:
            raise IndexError(f"member {index} of an ensemble of {self.members}")
        single = copy.deepcopy(self)
        single.members = 1
        for layer in single.layers:
            layer.weight = nn.Parameter(layer.weight.data[index:index + 1].clone())
            layer.bias = nn.Parameter(layer.bias.data[index:index + 1].clone())
        return single


def _leaky() -> nn.Module:
    return nn.LeakyReLU(0.2)


class ToyModel(nn.Module):
    """ŷ = g(x) for x (B, 1) → (B, 2); f is a 2-layer MLP (``hidden`` units) with unbounded outputs
    (no sigmoid on the toy), ``members`` independent copies of it (see :class:`EnsembleMLP`).

    ``projected``: ŷ = A⁺x + (I − A⁺A) f(x), so Aŷ = x for any weights (Eq. 7); ``soft``/``none``: ŷ = f(x).
    """

    def __init__(self, constraint: str, hidden: int = 64, op: ToyOperator | None = None, members: int = 1):
        super().__init__()
        if constraint not in ("projected", "soft", "none"):
            raise ValueError(f"constraint must be projected, soft or none, got '{constraint}'")
        self.op = op or ToyOperator()
        self.constraint = constraint
        self.f = EnsembleMLP(1, hidden, 2, members)

    @property
    def members(self) -> int:
        return self.f.members

    def forward(self, x: Tensor) -> Tensor:
        f = self.f(x / X_SCALE)
        if self.constraint != "projected":
            return f
        # (I − A⁺A) f + A⁺x written as f + A⁺(x − Af) (one A⁺ instead of two; same map).
        return f + self.op.pinv(x - self.op(f))

    def member(self, index: int) -> "ToyModel":
        """Restart ``index`` of an ensemble as a stand-alone model (same constraint, ``members = 1``)."""
        single = copy.deepcopy(self)
        single.f = self.f.member(index)
        return single


class ToyDiscriminator(nn.Module):
    """y (B, 2) → logit (B,); 2 FC layers × ``hidden`` with LeakyReLU(0.2); ``members`` copies."""

    def __init__(self, hidden: int = 64, members: int = 1):
        super().__init__()
        self.net = EnsembleMLP(2, hidden, 1, members, activation=_leaky)

    def forward(self, y: Tensor) -> Tensor:
        return self.net(y).squeeze(1)


class ToyDenoiser(nn.Module):
    """D(ỹ) = ỹ + r(ỹ), r: 2 FC layers × ``hidden`` (paper: 256); ``members`` copies. Residual form as in
    the image DAE, so the score estimate (D(ỹ) − ỹ)/σ² is the network's own output scaled."""

    def __init__(self, hidden: int = 256, members: int = 1):
        super().__init__()
        self.residual = EnsembleMLP(2, hidden, 2, members, activation=nn.SiLU)

    def forward(self, y: Tensor) -> Tensor:
        return y + self.residual(y)

    def member(self, index: int) -> "ToyDenoiser":
        single = copy.deepcopy(self)
        single.residual = self.residual.member(index)
        return single


class ToyNetworks:
    """The toy's auxiliary networks (:class:`~affsr.methods.base.NetworkFactory`), ``members`` copies each
    (one per restart, matching the model's ensemble)."""

    def __init__(self, hidden: int = 64, dae_hidden: int = 256, members: int = 1):
        self.hidden = hidden
        self.dae_hidden = dae_hidden
        self.members = members

    def discriminator(self) -> nn.Module:
        return ToyDiscriminator(self.hidden, self.members)

    def denoiser(self) -> nn.Module:
        return ToyDenoiser(self.dae_hidden, self.members)

    def density(self) -> nn.Module:
        raise NotImplementedError("the 2-D toy has no density-guided method (no AffLL in the paper's Table 1)")


def roll_batch_sampler(batch_size: int, device: torch.device | str = "cpu", members: int = 1):
    """``sample_batch(sampler)`` for :func:`affsr.train.fit`: fresh noisy-roll draws from ``sampler``,
    ``batch_size`` per ensemble member (rows in member blocks); ``hr`` is paired with ``lr`` = A·hr
    (pixel losses), ``hr_unpaired`` is an independent draw (the GAN's real samples)."""
    op = ToyOperator()
    n = batch_size * members

    def sample_batch(sampler: torch.Generator) -> Batch:
        y = sample_roll(n, sampler)
        unpaired = sample_roll(n, sampler)
        return Batch(lr=op(y).to(device), hr=y.to(device), hr_unpaired=unpaired.to(device))

    return sample_batch


# ------------------------------------------------------------------------------------ ground truth


class RollKDE:
    """Isotropic Gaussian KDE p(y) = (1/N) Σ_s N(y; s, h²I) of noise-free roll samples (float64, CPU)."""

    def __init__(self, samples: Tensor, bandwidth: float, grid_step: float = 0.02):
        self.samples = samples.detach().to("cpu", torch.float64)
        self.h = float(bandwidth)
        self.grid_step = float(grid_step)
        self.log_norm = math.log(len(self.samples) * 2.0 * math.pi * self.h**2)
        s = self.samples
        self.a = 0.5 * (s[:, 0] + s[:, 1])  # A s: which line a sample sits on
        self.t = V[0] * s[:, 0] + V[1] * s[:, 1]  # its position along the line
        self._table: tuple[Tensor, Tensor, Tensor] | None = None

    @classmethod
    def fit(cls, n: int, bandwidth: float, generator: torch.Generator, grid_step: float = 0.02) -> "RollKDE":
        return cls(sample_roll(n, generator, noisy=False, dtype=torch.float64), bandwidth, grid_step)

    # exact, any points
    def log_density(self, points: Tensor, chunk: int = 256) -> Tensor:
        """Exact log p(y) in nats for points (n, 2): chunked log-sum-exp over all samples."""
        points = torch.as_tensor(points).to("cpu", torch.float64).reshape(-1, 2)
        out = [torch.logsumexp(torch.cdist(points[i:i + chunk], self.samples).square_().mul_(-0.5 / self.h**2), 1)
               for i in range(0, len(points), chunk)]
        return (torch.cat(out) if out else points.new_zeros(0)) - self.log_norm

    # exact, product grids
    def _separable(self, u: Tensor, v: Tensor, su: Tensor, sv: Tensor, hu: float, hv: float,
                   dtype: torch.dtype = torch.float32, chunk: int = 8192) -> Tensor:
        """log (1/N·2πh²) Σ_s exp(−(u_i − su_s)²/2hu² − (v_j − sv_s)²/2hv²) for all i, j: one matmul.

        Kernel factors are exponentiated in float64 and multiplied in ``dtype`` (float32: 2–3× faster),
        the sums accumulated in float64. With float32, sums below :data:`_F32_EXACT` (where float32
        underflow of single terms could matter; log p ≲ −67 nats) are returned as NaN: "not computed".
        """
        u, v = u.to(torch.float64), v.to(torch.float64)
        total = torch.zeros(len(u), len(v), dtype=torch.float64)
        for i in range(0, len(su), chunk):
            ku = torch.exp((u[None, :] - su[i:i + chunk, None]).square_().mul_(-0.5 / hu**2)).to(dtype)
            kv = torch.exp((v[None, :] - sv[i:i + chunk, None]).square_().mul_(-0.5 / hv**2)).to(dtype)
            total += (ku.T @ kv).to(torch.float64)
        if dtype != torch.float64:
            total[total < _F32_EXACT] = math.nan
        return total.log_() - self.log_norm

    def grid_log_density(self, u: Tensor, v: Tensor, coords: str = "xy",
                         dtype: torch.dtype = torch.float64) -> Tensor:
        """Exact log p on the product grid u × v, shape (len(u), len(v)).

        ``coords="xy"``: points (u_i, v_j) in the plane. ``coords="line"``: points A⁺u_i + v_j·V, i.e.
        position v_j along the solution line of x = u_i. float64: entries that underflow (≳ 7.5 from
        every sample) are −inf; float32 (faster): entries with log p ≲ −67 are NaN (see ``_separable``).
        """
        if coords == "xy":
            return self._separable(u, v, self.samples[:, 0], self.samples[:, 1], self.h, self.h, dtype)
        if coords == "line":
            # ‖A⁺x + tV − s‖² = 2(x − a_s)² + (t − t_s)²
            return self._separable(u, v, self.a, self.t, self.h / math.sqrt(2.0), self.h, dtype)
        raise ValueError(f"coords must be 'xy' or 'line', got '{coords}'")

    # fast, any points
    def table(self) -> tuple[Tensor, Tensor, Tensor]:
        """(grid x, grid y, log p on the grid): the box of the samples ± 10 bandwidths, ``grid_step``."""
        if self._table is None:
            lo = self.samples.min(0).values - 10 * self.h
            hi = self.samples.max(0).values + 10 * self.h
            n = [int(math.ceil(float(hi[k] - lo[k]) / self.grid_step)) + 1 for k in range(2)]
            gx = lo[0] + self.grid_step * torch.arange(n[0], dtype=torch.float64)
            gy = lo[1] + self.grid_step * torch.arange(n[1], dtype=torch.float64)
            self._table = (gx, gy, self.grid_log_density(gx, gy, dtype=torch.float32))
        return self._table

    def fast_log_density(self, points: Tensor) -> Tensor:
        """log p(y) by bilinear interpolation (log space) of :meth:`table`; exact outside it."""
        points = torch.as_tensor(points).to("cpu", torch.float64).reshape(-1, 2)
        gx, gy, table = self.table()
        step = self.grid_step
        fx = (points[:, 0] - gx[0]) / step
        fy = (points[:, 1] - gy[0]) / step
        inside = (fx >= 0) & (fx <= len(gx) - 1) & (fy >= 0) & (fy <= len(gy) - 1) & torch.isfinite(fx + fy)
        out = torch.empty(len(points), dtype=torch.float64)
        ix = fx[inside].floor().clamp(max=len(gx) - 2).long()
        iy = fy[inside].floor().clamp(max=len(gy) - 2).long()
        wx, wy = fx[inside] - ix, fy[inside] - iy
        corners = (table[ix, iy] * (1 - wx) * (1 - wy) + table[ix + 1, iy] * wx * (1 - wy)
                   + table[ix, iy + 1] * (1 - wx) * wy + table[ix + 1, iy + 1] * wx * wy)
        out[inside] = corners
        if (~inside).any():
            out[~inside] = self.log_density(points[~inside])
        # a corner not computed in float32 (NaN, log p ≲ −67) or underflowed: use the exact value there
        bad = ~torch.isfinite(out)
        if bad.any():
            out[bad] = self.log_density(points[bad])
        return out


def map_estimates(kde: RollKDE, x: Tensor, step: float = 0.02) -> tuple[Tensor, Tensor]:
    """Brute-force MAP along each solution line {y : Ay = x}: (points (n, 2), their log p (n,)).

    The grid t ∈ [min t_s, max t_s] (step ``step``; :func:`line_estimates` widens it) covers every KDE
    centre's position along the line; the line density is a Gaussian mixture in t, whose maximum lies
    inside the hull of its centres. The MAP point is the grid point of highest KDE density (products in
    float32: relative error ~1e-6).
    """
    found = line_estimates(kde, x, step)
    return found["map"], found["map_log_density"]


def line_estimates(kde: RollKDE, x: Tensor, step: float = 0.02) -> dict[str, Tensor]:
    """The Bayes estimators of each x by brute force along its solution line, in one scan.

    Returns points (n, 2) ``map`` (posterior mode: MAP), ``posterior_mean`` (the Bayes estimator under
    squared error: what an MSE-trained net should converge to) and ``posterior_median`` (under absolute
    error, per coordinate: MAE's target; the line is monotone in each coordinate, so the coordinate-wise
    median is the median along t, linearly interpolated in the CDF), and ``map_log_density`` (n,).

    One table of log p over (lines × positions) serves all three (grid as in :func:`map_estimates`,
    widened by 5 bandwidths on each side so the posterior's tails are summed too; the MAP, inside the
    hull, is unchanged). Entries the float32 product does not compute (log p ≲ −67) count as zero
    posterior weight; lines with none computed are redone in float64, and lines where even float64
    underflows everywhere (≳ 5 bandwidths·√2 from every sample in x) with the exact log-sum-exp KDE.
    """
    x = torch.as_tensor(x).to("cpu", torch.float64).reshape(-1)
    t = _line_grid(kde, step, margin=5 * kde.h)
    parts: dict[str, list[Tensor]] = {"map_t": [], "mean_t": [], "median_t": [], "map_log_density": []}
    for i in range(0, len(x), 512):  # bound the (lines × positions) table to ~512 × 1000 doubles
        xs = x[i:i + 512]
        logp = torch.nan_to_num(kde.grid_log_density(xs, t, coords="line", dtype=torch.float32),
                                nan=-math.inf)
        far = ~torch.isfinite(logp.max(dim=1).values)  # line far from every sample (|x| ≳ 8.5)
        if far.any():
            logp[far] = kde.grid_log_density(xs[far], t, coords="line")
        for row in torch.nonzero(~torch.isfinite(logp.max(dim=1).values)).reshape(-1).tolist():
            logp[row] = kde.log_density(_on_line(xs[row].expand(len(t)), t))
        value, index = logp.max(dim=1)
        weights = torch.softmax(logp, dim=1)
        cdf = torch.cumsum(weights, dim=1) - 0.5 * weights  # each grid point's mass centred on it
        # first position where the CDF reaches ½, then linear interpolation from the one before it
        upper = torch.searchsorted(cdf, torch.full((len(xs), 1), 0.5, dtype=cdf.dtype)).clamp(1, len(t) - 1)
        c_hi, c_lo = cdf.gather(1, upper)[:, 0], cdf.gather(1, upper - 1)[:, 0]
        frac = ((0.5 - c_lo) / (c_hi - c_lo).clamp_min(1e-300)).clamp(0.0, 1.0)
        parts["median_t"].append(t[upper[:, 0] - 1] + frac * (t[upper[:, 0]] - t[upper[:, 0] - 1]))
        parts["mean_t"].append(weights @ t)
        parts["map_t"].append(t[index])
        parts["map_log_density"].append(value)
    cat = {k: (torch.cat(v) if v else x.new_zeros(0)) for k, v in parts.items()}
    return {"map": _on_line(x, cat["map_t"]), "posterior_mean": _on_line(x, cat["mean_t"]),
            "posterior_median": _on_line(x, cat["median_t"]), "map_log_density": cat["map_log_density"]}


def _line_grid(kde: RollKDE, step: float, margin: float = 0.0) -> Tensor:
    """Positions t of step ``step`` over [min t_s, max t_s], plus ``margin`` on each side (whole steps,
    so the grid without margin is a subset of the one with it)."""
    lo, hi = float(kde.t.min()), float(kde.t.max())
    extra = int(math.ceil(margin / step))
    n = int(math.ceil((hi - lo) / step)) + 1 + 2 * extra
    return lo - extra * step + step * torch.arange(n, dtype=torch.float64)


def _on_line(x: Tensor, t: Tensor) -> Tensor:
    """A⁺x + t·V."""
    return torch.stack([x + t * V[0], x + t * V[1]], dim=1)


def line_posterior(kde: RollKDE, x: float, t: Tensor) -> dict[str, np.ndarray | float]:
    """The posterior p(y | x) ∝ p_KDE along the line of ``x`` at positions ``t``, with its mean (MSE's
    Bayes estimate), median (MAE's, per coordinate = along t since the line is monotone in each
    coordinate) and mode (MAP), each as a 2-D point. ``t`` must cover the posterior's mass."""
    t = torch.as_tensor(t, dtype=torch.float64)
    xs = torch.tensor([float(x)], dtype=torch.float64)
    logp = kde.grid_log_density(xs, t, coords="line")[0]
    weights = torch.softmax(logp, 0)
    mean_t = float((weights * t).sum())
    cdf = torch.cumsum(weights, 0) - 0.5 * weights  # as in line_estimates: each point's mass centred on it
    median_t = float(np.interp(0.5, cdf.numpy(), t.numpy()))
    mode_t = float(t[int(torch.argmax(logp))])
    points = {k: _on_line(xs, torch.tensor([v], dtype=torch.float64))[0].numpy()
              for k, v in (("mse", mean_t), ("mae", median_t), ("map", mode_t))}
    return {"t": t.numpy(), "points": _on_line(xs.expand(len(t)), t).numpy(), "log_density": logp.numpy(),
            "estimates": points}


# ----------------------------------------------------------------------------------------- training


def _train_config(cfg: ToyConfig, steps: int, objective: str, lr: float | None = None) -> TrainConfig:
    gan = objective == "gan"
    lr = lr if lr is not None else (cfg.gan_lr if gan else cfg.lr)
    return TrainConfig(steps=steps, batch_size=cfg.batch_size, lr=lr,
                       beta1=cfg.gan_beta1 if gan else cfg.beta1, beta2=0.999 if gan else cfg.beta2,
                       log_every=max(1, steps // 50), checkpoint_every=max(1, steps), device=cfg.device)


def _run_seed(seed: int, slot: int) -> int:
    """Seed of one training run (all restarts of one method): distinct per (study seed, method slot)."""
    return seed * 1000 + slot


def _fit(objective, objective_name: str, cfg: ToyConfig, steps: int, name: str, run_seed: int,
         device: torch.device, lr: float | None = None):
    """Train ``objective`` with the shared loop on fresh roll batches (``batch_size`` per restart)."""
    from affsr.train import fit  # imported here: affsr.train pulls in the image stack

    settings = {"seed": run_seed, "dataset": "toy", "method": name, "restarts": cfg.restarts}
    return fit(objective, roll_batch_sampler(cfg.batch_size, device, cfg.restarts),
               _train_config(cfg, steps, objective_name, lr), name, settings, device, resume_path=None,
               progress=False)


def train_denoisers(cfg: ToyConfig, run_seed: int, device: torch.device) -> tuple[list[Guide], ToyDenoiser]:
    """One DAE per restart (objective ``dae``, σ ``dae_sigma_start`` → ``dae_sigma_end`` in
    ``dae_snapshots`` segments), all restarts in one run of the shared loop (an ensemble of
    ``cfg.restarts`` independent denoisers). Returns the snapshots as frozen guides in curriculum order
    (label σ; each guide holds every restart's denoiser, member r guiding restart r) and the final DAE."""
    torch.manual_seed(run_seed)
    options = from_dict(options_class("dae"), {"sigma_start": cfg.dae_sigma_start, "sigma_end": cfg.dae_sigma_end,
                                               "snapshots": cfg.dae_snapshots}, "toy.dae.options")
    nets = ToyNetworks(cfg.hidden, cfg.dae_hidden, cfg.restarts)
    context = Context(model=ToyModel("none", cfg.hidden, members=cfg.restarts), options=options,
                      consistency_weight=0.0, nets=nets)
    objective = objective_class("dae")(context)
    state = _fit(objective, "dae", cfg, cfg.dae_steps, "toy-dae", run_seed, device)
    (name, trained), = objective.networks.items()
    if not state.snapshots:
        raise RuntimeError("toy: the denoiser run kept no snapshots "
                           "(does objective 'dae' define snapshot_points?)")
    guides = []
    for snap in state.snapshots:
        network = nets.denoiser()
        network.load_state_dict(snap["networks"][name])
        guides.append(Guide(label=float(snap["label"]), network=network.to(device).eval().requires_grad_(False)))
    return guides, trained.eval()


def train_method(method: str, cfg: ToyConfig, run_seed: int, device: torch.device,
                 guides: list[Guide] | None = None) -> tuple[ToyModel, pd.DataFrame]:
    """Build method ``method``'s objective on a fresh :class:`ToyModel` ensemble (``cfg.restarts``
    independently initialised members; weights from ``run_seed``) and train it with
    :func:`affsr.train.fit`. Returns the trained ensemble (eval mode; ``.member(r)`` is restart r) and
    the loss log (averaged over restarts)."""
    objective_name, constraint = METHODS[method]
    torch.manual_seed(run_seed)
    model = ToyModel(constraint, cfg.hidden, members=cfg.restarts)
    context = Context(model=model, options=_options(method, cfg),
                      consistency_weight=cfg.consistency_weight,
                      nets=ToyNetworks(cfg.hidden, cfg.dae_hidden, cfg.restarts), guides=list(guides or []))
    objective = objective_class(objective_name)(context)
    steps, lr = cfg.steps, None  # lr None: the objective's default (_train_config)
    if method == "mae":
        steps, lr = cfg.mae_steps, cfg.mae_lr
    elif objective_name == "gan":
        steps = cfg.gan_steps
    state = _fit(objective, objective_name, cfg, steps, f"toy-{method}", run_seed, device, lr)
    return model.eval(), pd.DataFrame(state.rows)


@torch.no_grad()
def _outputs(model: nn.Module, x: Tensor) -> Tensor:
    """ŷ = model(x) in float64 on the CPU (so Aŷ = x of projected models holds to ~1e-16)."""
    model64 = copy.deepcopy(model).to("cpu", torch.float64).eval()
    return model64(x.to(torch.float64).reshape(-1, 1))


@torch.no_grad()
def _score_field(denoiser: nn.Module, sigma: float, lim: float = 9.0, n: int = 25) -> dict[str, np.ndarray]:
    """(D(y) − y)/σ² ≈ ∇ log p_σ(y) on an n × n grid over [−lim, lim]² (Eq. 12)."""
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(g, g, indexing="ij")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    net = copy.deepcopy(denoiser).to("cpu", torch.float64).eval()
    vectors = (net(points) - points) / sigma**2
    return {"points": points.numpy(), "vectors": vectors.numpy(), "sigma": float(sigma)}


# -------------------------------------------------------------------------------------------- study


def run_toy_study(cfg: ToyConfig, seed: int, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Train every method of ``cfg`` × ``cfg.restarts``; score them and the brute-force MAP.

    Returns ``(results, data)``. ``results`` is tidy: columns dataset ("toy"), method, metric, value, with
    metrics ``cross_entropy`` (H[q_θ, p_Y] in nats, mean over restarts), ``cross_entropy_std`` (std over
    restarts, ddof 1; 0 with one restart), ``cross_entropy_sem`` (its standard error, std/√restarts),
    ``cross_entropy_median``, ``lr_mse`` and ``lr_mse_std``; plus
    one ``cross_entropy`` row each for ``map`` (the brute-force MAP outputs), ``posterior_mean`` and
    ``posterior_median`` (the Bayes estimators of MSE and MAE, :data:`BAYES_ROWS`). Every model and
    these estimators are scored on the same ``eval_samples`` draws x ~ p_X. ``data`` holds what
    :func:`affsr.plots.toy_figure` draws and the per-restart scores (``per_restart``), the loss logs of restart 0 and timings.
    """
    from tqdm import tqdm

    device = torch.device(cfg.device)
    timing: dict[str, float] = {}
    started = time.perf_counter()
    op = ToyOperator()
    kde = RollKDE.fit(cfg.kde_samples, cfg.kde_bandwidth, torch.Generator().manual_seed(seed * 7 + 1),
                      cfg.kde_grid_step)
    eval_y = sample_roll(cfg.eval_samples, torch.Generator().manual_seed(seed * 7 + 2), dtype=torch.float64)
    eval_x = op(eval_y)[:, 0]
    curve_x = torch.linspace(-8.0, 8.0, cfg.curve_points, dtype=torch.float64)
    prior = sample_roll(4000, torch.Generator().manual_seed(seed * 7 + 3)).numpy()

    t0 = time.perf_counter()
    kde.table()
    timing["kde_table"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    estimates = line_estimates(kde, torch.cat([eval_x, curve_x]), cfg.map_step)
    timing["map_search"] = time.perf_counter() - t0
    map_points, map_eval_logp = estimates["map"], estimates["map_log_density"][: len(eval_x)]
    # the Bayes-optimal estimators under squared and absolute error, scored like the models
    bayes = {name: float(-kde.fast_log_density(estimates[name][: len(eval_x)]).mean()) for name in BAYES_ROWS}
    line_t = torch.arange(-12.0, 12.0 + 1e-9, 0.01, dtype=torch.float64)
    line = line_posterior(kde, 0.5, line_t)

    needs_guides = any(METHODS[m][0] == "denoiser_guided" for m in cfg.methods)
    bar = tqdm(total=len(cfg.methods) + int(needs_guides), disable=not progress, desc="toy study", unit="run")
    rows: list[dict] = []
    curves: dict[str, np.ndarray] = {}
    logs: dict[str, pd.DataFrame] = {}
    score_field = None
    guides: list[Guide] = []
    t_train = time.perf_counter()
    if needs_guides:
        bar.set_postfix_str("dae")
        t0 = time.perf_counter()
        guides, denoiser = train_denoisers(cfg, _run_seed(seed, 99), device)
        timing["train_dae"] = time.perf_counter() - t0
        score_field = _score_field(denoiser.member(0), guides[-1].label)
        bar.update(1)
    for slot, method in enumerate(cfg.methods):
        bar.set_postfix_str(method)
        t0 = time.perf_counter()
        uses_guides = METHODS[method][0] == "denoiser_guided"
        ensemble, logs[method] = train_method(method, cfg, _run_seed(seed, slot), device,
                                              guides if uses_guides else None)
        timing[f"train_{method}"] = time.perf_counter() - t0
        for restart in range(cfg.restarts):
            model = ensemble.member(restart)
            sr = _outputs(model, eval_x)
            rows.append({"method": method, "restart": restart,
                         "cross_entropy": float(-kde.fast_log_density(sr).mean()),
                         "lr_mse": float((op(sr)[:, 0] - eval_x).square().mean())})
            if restart == 0:
                curves[method] = _outputs(model, curve_x).numpy()
        bar.update(1)
    bar.close()
    timing["training_and_scoring"] = time.perf_counter() - t_train

    per_restart = pd.DataFrame(rows, columns=["method", "restart", "cross_entropy", "lr_mse"])
    out = []
    for method in cfg.methods:
        sub = per_restart[per_restart["method"] == method]
        for metric in ("cross_entropy", "lr_mse"):
            values = sub[metric].to_numpy()
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            out.append({"dataset": "toy", "method": method, "metric": metric, "value": float(values.mean())})
            out.append({"dataset": "toy", "method": method, "metric": f"{metric}_std", "value": std})
        # the median too: one restart that drifts off the roll dominates a mean of log-densities
        out.append({"dataset": "toy", "method": method, "metric": "cross_entropy_median",
                    "value": float(np.median(sub["cross_entropy"].to_numpy()))})
        # standard error of the mean over restarts: what a difference between two methods must exceed
        sem = float(sub["cross_entropy"].std(ddof=1) / math.sqrt(len(sub))) if len(sub) > 1 else 0.0
        out.append({"dataset": "toy", "method": method, "metric": "cross_entropy_sem", "value": sem})
    out.append({"dataset": "toy", "method": "map", "metric": "cross_entropy",
                "value": float(-map_eval_logp.mean())})
    out.extend({"dataset": "toy", "method": name, "metric": "cross_entropy", "value": value}
               for name, value in bayes.items())
    results = pd.DataFrame(out, columns=["dataset", "method", "metric", "value"])
    timing["total"] = time.perf_counter() - started

    data = {
        "prior": prior,
        "kde_samples": kde.samples[:: max(1, len(kde.samples) // 5000)].numpy(),
        "line": {"x": 0.5, **line},
        "map_curve": {"x": curve_x.numpy(), "y": map_points[len(eval_x):].numpy()},
        "outputs": {m: {"x": curve_x.numpy(), "y": curves[m]} for m in cfg.methods},
        "score_field": score_field,
        "x_typical": tuple(float(q) for q in torch.quantile(eval_x, eval_x.new_tensor([0.005, 0.995]))),
        "cross_entropy": {m: float(per_restart.loc[per_restart["method"] == m, "cross_entropy"].mean())
                          for m in cfg.methods} | {"map": float(-map_eval_logp.mean())} | bayes,
        "per_restart": per_restart,
        "logs": logs,
        "timing": timing,
        "config": asdict(cfg),
        "seed": seed,
    }
    return results, data


def table1(results: pd.DataFrame) -> pd.DataFrame:
    """Our Table 1 beside the paper's: one row per model (paper order, then any other of ours).

    Numeric columns ``cross_entropy``, ``cross_entropy_std``, ``paper_cross_entropy``, ``lr_mse``,
    ``lr_mse_std``, ``paper_lr_mse``, ``cross_entropy_median`` (NaN where absent), and the printable
    ``H ours`` / ``ℓ_MSE ours`` as "mean ± std".
    """
    required = {"method", "metric", "value"}
    if not required <= set(results.columns):
        raise ValueError(f"table1: results need columns {sorted(required)}, got {list(results.columns)}")
    wide = results.pivot_table(index="method", columns="metric", values="value", aggfunc="mean")
    order = list(PAPER_TABLE1) + [m for m in wide.index if m not in PAPER_TABLE1]
    rows = []
    for method in order:
        ours = wide.loc[method] if method in wide.index else pd.Series(dtype=float)
        paper = PAPER_TABLE1.get(method, {})
        row = {"model": DISPLAY_NAMES.get(method, method)}
        for metric in ("cross_entropy", "lr_mse"):
            row[metric] = float(ours.get(metric, math.nan))
            row[f"{metric}_std"] = float(ours.get(f"{metric}_std", math.nan))
            row[f"paper_{metric}"] = float(paper.get(metric, math.nan))
        row["cross_entropy_median"] = float(ours.get("cross_entropy_median", math.nan))
        rows.append(row)
    table = pd.DataFrame(rows)
    table["H ours"] = [_pm(m, s, "{:.2f}") for m, s in zip(table["cross_entropy"], table["cross_entropy_std"])]
    table["ℓ_MSE ours"] = [_pm(m, s, "{:.2e}") for m, s in zip(table["lr_mse"], table["lr_mse_std"])]
    return table.set_index("model")


def _pm(mean: float, std: float, fmt: str) -> str:
    if not math.isfinite(mean):
        return "–"
    return fmt.format(mean) + ("" if not math.isfinite(std) else " ± " + fmt.format(std))
