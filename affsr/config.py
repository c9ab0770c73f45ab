"""The settings of affsr as frozen, typed dataclasses: the bottom layer, importing nothing of affsr but
the parser and the error types.

Every section of params.yaml has a dataclass here; each checks its own ranges in ``__post_init__``
(``ValueError("key: must be ...")``, reported by :func:`affsr.parse.from_dict` under the dotted key), so a
bad value is refused when params are loaded — by ``snakemake -n`` already — and never reaches a training
job. Checks that need other modules (objective names, sources) live in :mod:`affsr.params`, which also
turns the whole file into the flat settings of one run (``resolve``); :class:`RunSettings` is that
dict's typed view, as the CLI and checkpoints carry it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from affsr.data_settings import OPERATOR_KINDS, DatasetConfig, DownloadConfig, OperatorConfig  # noqa: F401 (re-exported)
from affsr.errors import ConfigError
from affsr.parse import check_one_of as _one_of
from affsr.parse import check_ranges as _check
from affsr.parse import from_dict

#: projected: A⁺x + (I − A⁺A) f; projected_box: that, then the nearest point with 0 ≤ ŷ ≤ 1 (affsr.box_layer).
CONSTRAINTS = ("projected", "projected_box", "soft", "none")
#: The data splits every prepared data set has (affsr prepare writes one .npz each).
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: The splits a run may train on: the test split is never trained on.
TRAINING_SPLITS = SPLITS[:2]
DEVICES = ("auto", "cpu", "cuda")
#: Reference upsamplers evaluate makes without a checkpoint (affsr.metrics.reference_outputs).
REFERENCES: tuple[str, ...] = ("bicubic", "pinv")


@dataclass(frozen=True)
class GeneratorConfig:
    """Residual conv net on the LR grid + sub-pixel upsampling (SRResNet/ESPCN-like)."""

    width: int = 32
    blocks: int = 4
    noise: int = 0  # maps of N(0, 1) noise concatenated to the LR input: > 0 = a stochastic generator
    skip: bool = False  # predict a residual over the cubic upsampling of the input (see nets.Generator)

    def __post_init__(self) -> None:
        _check(self, at_least_one=("width",), non_negative=("blocks", "noise"))


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Strided conv net; one stride-2 layer per entry of ``widths`` (paper, grass: 32/64/128/256)."""

    widths: tuple[int, ...] = (32, 64, 128, 256)

    def __post_init__(self) -> None:
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths: must be a non-empty list of sizes ≥ 1, got {list(self.widths)}")


@dataclass(frozen=True)
class DenoiserConfig:
    """The denoising auto-encoder of AffDG/SoftDG (paper, grass: 4 conv layers × 128 maps)."""

    width: int = 64
    depth: int = 4

    def __post_init__(self) -> None:
        _check(self, at_least_one=("width", "depth"))


@dataclass(frozen=True)
class DensityConfig:
    """The PixelCNN-like density model with a continuous mixture head (paper, grass: 4 masked conv
    layers × 64 maps, kernel 5, first 7; MCGSM with 32 components and 32 quadratic features)."""

    width: int = 32
    layers: int = 4
    kernel: int = 5
    first_kernel: int = 7
    components: int = 8
    features: int = 8

    def __post_init__(self) -> None:
        _check(self, at_least_one=("width", "layers", "kernel", "first_kernel", "components"),
               non_negative=("features",))  # 0 features: plain softmax gating


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
    # How the loop runs on its device (affsr/accelerate.py). ``auto`` is the fastest safe choice for the
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
               fractions=("beta1", "beta2", "ema"))
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


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluation: how many test outputs to keep for the figures; reference upsamplers; and the
    method whose density model scores every output (held-out cross-entropy; "" for none)."""

    n_samples: int = 8
    references: tuple[str, ...] = ("bicubic", "pinv")
    density: str = ""
    #: Training steps of each c2st classifier (affsr.perception.c2st; batch 32, 2 folds). 200 on the demo
    #: sets; tiny test configs use a few, a realism study more (the classifier must be able to win).
    c2st_steps: int = 200

    def __post_init__(self) -> None:
        _check(self, at_least_one=("n_samples", "c2st_steps"))
        for ref in self.references:
            _one_of(ref, "references", REFERENCES)


@dataclass(frozen=True)
class ToyOverride:
    """What the 2-D toy changes of a params.yaml method: loop settings (``train``: keys of
    :class:`TrainConfig`) and the objective's ``options`` (keys of its ``Options``), laid over the
    method's own options."""

    train: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ToyConfig:
    """The 2-D Swiss-roll study (paper §5.1, Table 1): it trains the methods of ``params.methods``
    through the same objectives and options as the images, with 2-D networks and its own loop settings.

    Which methods: every super-resolving method of params.yaml not in ``skip``, in params order, and the
    guides they name (AffDG's denoiser). Each run's settings are, in order: ``train`` (the toy's loop:
    every key of :class:`TrainConfig` but ``log_every``/``checkpoint_every``, derived from the steps),
    the method's image ``options``, then ``objectives[<objective>]`` and ``methods[<method>]``
    (:class:`ToyOverride`); soft methods use ``consistency_weight``. So a new objective or method reaches
    the toy with no edit of the toy. Paper-given: ``restarts`` 10, ``hidden`` 64 (generator and
    discriminator: 2 FC × 64), ``dae_hidden`` 256, DAE σ 0.5 → 0.25, ``kde_samples`` 50,000,
    ``kde_bandwidth`` 0.2; every other value is our choice, measured in docs/toy.md.
    """

    #: Random restarts per method (paper: 10), trained side by side as an ensemble in one loop run.
    restarts: int = 10
    #: Width of the generator's and the discriminator's two hidden layers (paper: 64).
    hidden: int = 64
    #: Width of the DAE's two hidden layers (paper: 256).
    dae_hidden: int = 256
    #: The toy's loop settings (batch_size is per restart), before per-objective/method overrides.
    train: dict = field(default_factory=dict)
    objectives: dict[str, ToyOverride] = field(default_factory=dict)
    methods: dict[str, ToyOverride] = field(default_factory=dict)
    #: params.yaml methods the toy does not train (each needs a reason in params.yaml).
    skip: tuple[str, ...] = ()
    #: Weight w of the soft penalty w·|x − Aŷ| of every soft method on the toy (nats per point).
    consistency_weight: float = 4.0
    #: Noise-free roll samples of the ground-truth KDE (paper: 50,000) and its bandwidth (paper: 0.2).
    kde_samples: int = 50_000
    kde_bandwidth: float = 0.2
    #: Grid step of the log-density table that scores model outputs (bilinear interpolation).
    kde_grid_step: float = 0.02
    #: Fresh noisy-roll draws x ~ p_X on which every model (and the MAP) is scored.
    eval_samples: int = 1000
    #: Step in t of the brute-force MAP search along each solution line.
    map_step: float = 0.02
    #: Points of the x ∈ [−8, 8] grid of the figure (MAP curve, each method's outputs).
    curve_points: int = 321

    def __post_init__(self) -> None:
        _check(self, at_least_one=("restarts", "hidden", "dae_hidden", "kde_samples", "eval_samples",
                                   "curve_points"),
               positive=("kde_bandwidth", "kde_grid_step", "map_step"), non_negative=("consistency_weight",))


@dataclass(frozen=True)
class ResourceConfig:
    """What one job of a workflow rule asks the scheduler for (Snakemake ``threads``/``resources``;
    the SLURM executor turns them into sbatch options)."""

    threads: int = 1
    mem_mb: int = 2000
    runtime: int = 60  # minutes
    gpu: int = 0

    def __post_init__(self) -> None:
        _check(self, at_least_one=("threads", "mem_mb", "runtime"), non_negative=("gpu",))


RULES_WITH_RESOURCES = ("download", "prepare", "train", "evaluate", "toy")
#: The studies of one params.yaml: ``demo`` is the file as it is; every other one is the file with the
#: section of that name merged over it (``paper``: paper scale on GPUs; ``cpu``: the realism tier;
#: ``box``: the default study with the box-constrained projection; ``smoke``: paper scale shrunk to minutes
#: on a CPU, laid over ``paper`` — scripts/smoke_study.py).
STUDIES = ("demo", "paper", "cpu", "box", "smoke")
STUDY_SECTIONS = STUDIES[1:]


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml (after the section of the chosen study is merged in, e.g. ``paper``
    when ``study: paper``)."""

    datasets: dict[str, DatasetConfig]
    methods: dict[str, MethodConfig]
    study: str = "demo"
    paper: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)
    box: dict = field(default_factory=dict)
    smoke: dict = field(default_factory=dict)
    #: Folder (relative to where Snakemake runs) the workflow writes data/, runs/ and results/ into;
    #: "" = right there. A study section sets its own (cpu: studies/cpu), so studies never overwrite
    #: each other's outputs.
    workdir: str = ""
    resources: dict[str, ResourceConfig] = field(default_factory=dict)
    seed: int = 0
    operator: OperatorConfig = OperatorConfig()
    generator: GeneratorConfig = GeneratorConfig()
    discriminator: DiscriminatorConfig = DiscriminatorConfig()
    denoiser: DenoiserConfig = DenoiserConfig()
    density: DensityConfig = DensityConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    toy: ToyConfig = ToyConfig()


@dataclass(frozen=True)
class RunSettings:
    """Typed view of one resolved run (what :func:`affsr.params.resolve` returns), checked again on the
    way in; a checkpoint carries it (plus the ``data`` it was trained on), so a checkpoint is usable
    without params.yaml. The objective name is checked where it is looked up (:mod:`affsr.build`)."""

    seed: int
    dataset: str
    method: str
    objective: str
    constraint: str
    consistency_weight: float
    split: str
    guide: str
    options: dict
    train: TrainConfig
    operator: OperatorConfig
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    denoiser: DenoiserConfig
    density: DensityConfig

    def __post_init__(self) -> None:
        _one_of(self.constraint, "constraint", CONSTRAINTS)
        _one_of(self.split, "split", TRAINING_SPLITS)

    @classmethod
    def parse(cls, data: dict | str) -> "RunSettings":
        """From ``resolve``'s dict or its JSON text (as Snakemake passes it)."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as err:
                raise ConfigError(f"--settings is not valid JSON: {err}") from None
        return from_dict(cls, data, "settings")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["discriminator"]["widths"] = list(out["discriminator"]["widths"])
        out["operator"] = self.operator.recorded()
        return out
