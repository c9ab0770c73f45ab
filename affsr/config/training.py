"""The settings of training: the shared loop (`train:`) and one trained model (`methods.<name>:`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from affsr.config.data import TRAINING_SPLITS
from affsr.config.parse import check_one_of as _one_of
from affsr.config.parse import check_ranges as _check

#: projected: A⁺x + (I − A⁺A) f; projected_box: that, then the nearest point with 0 ≤ ŷ ≤ 1 (affsr.operators.box_layer).
CONSTRAINTS = ("projected", "projected_box", "soft", "none")


DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the one training loop, shared by every method (a method may override any of them)."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    log_every: int = 25
    checkpoint_every: int = 250
    device: str = "auto"
    #: Learning rate factor per network of the objective (e.g. ``{discriminator: 5}``: D at 5 × lr);
    #: networks not named train at ``lr``.
    lr_scale: dict[str, float] = field(default_factory=dict)
    #: Decay of an exponential moving average of the generator's weights (0 = none; e.g. 0.995). The
    #: average is what the checkpoint's ``generator`` holds, so evaluation and ``upscale`` use it; the
    #: raw weights are kept beside it (``raw_networks``). Runs without a generator ignore it.
    ema: float = 0.0
    # How the loop runs on its device (affsr/training/accelerate.py). ``auto`` is the fastest safe choice for the
    # device: on the CPU all off (fp32, contiguous, eager: the CPU study's numbers stay bitwise the
    # same); on CUDA all on. Each can be forced on or off (true / false), e.g. to compare.
    #: fp32, or bf16 autocast of the networks' forward passes (losses, optimiser, the affine projection
    #: and the density model's likelihood stay fp32). auto: bf16 on a CUDA GPU that supports it.
    precision: str = "auto"
    #: NHWC memory format of the networks and batches (faster convolutions on tensor cores). auto: CUDA.
    channels_last: str | bool = "auto"
    #: torch.compile each network; if compiling fails, one ``affsr: note:`` line and eager. auto: CUDA.
    compile: str | bool = "auto"
    #: Keep the training split on the device and slice batches there (else: sliced on the host, one
    #: pinned copy per batch). auto: when it takes under half the GPU's free memory (always on the CPU).
    data_on_device: str | bool = "auto"

    PRECISIONS = ("auto", "fp32", "bf16")  # not a field: no annotation

    def __post_init__(self) -> None:
        _check(self, non_negative=("steps",), positive=("batch_size", "log_every", "checkpoint_every", "lr"),
               fractions=("beta1", "beta2", "ema"), counts=("steps", "batch_size", "log_every", "checkpoint_every"))
        _one_of(self.device, "device", DEVICES)
        _one_of(self.precision, "precision", self.PRECISIONS)
        for key in ("channels_last", "compile", "data_on_device"):
            value = getattr(self, key)
            if value not in ("auto", True, False) or isinstance(value, int) and not isinstance(value, bool):
                raise ValueError(f"{key}: {value!r} is not one of: auto, true, false")
        for name, factor in self.lr_scale.items():
            if not factor > 0:
                raise ValueError(f"lr_scale.{name}: must be > 0, got {factor!r}")


@dataclass(frozen=True)
class MethodConfig:
    """One trained model: an objective (a module in ``affsr/methods/``) × a consistency constraint.

    ``consistency_weight`` is the weight w of the soft penalty w·Σ|x − Aŷ| per image (nats; a Laplace
    observation model of scale 1/w) used when ``constraint: soft`` (paper §3.2: weight not stated). ``split`` is the data split it trains on
    (the held-out density model trains on ``val``, which no SR method sees). ``guide`` names another
    method whose snapshots guide this one (AffDG: the denoiser; AffLL: the density model). ``train`` and
    ``generator`` override those sections for this method (e.g. a stochastic generator: ``noise: 4``).
    """

    objective: str
    constraint: str = "projected"
    consistency_weight: float = 1.0
    split: str = "train"
    guide: str = ""
    options: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    generator: dict = field(default_factory=dict)  # overrides of the generator section for this method
    #: Added to the study's seed for this run: a second training seed of a method is a copy of it with
    #: ``seed_offset: 1`` (weights, batches and noise all change; the data do not).
    seed_offset: int = 0

    def __post_init__(self) -> None:
        _one_of(self.constraint, "constraint", CONSTRAINTS)
        _one_of(self.split, "split", TRAINING_SPLITS)
        _check(self, non_negative=("consistency_weight",))
