"""The settings of a whole study: evaluation, the 2-D toy, the scheduler's resources, the studies of one
params.yaml, all of params.yaml (:class:`Params`) and one resolved run (:class:`RunSettings`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from affsr.config.data import TRAINING_SPLITS, DatasetConfig, OperatorConfig
from affsr.config.limits import SEED_LIMIT
from affsr.config.networks import DenoiserConfig, DensityConfig, DiscriminatorConfig, GeneratorConfig
from affsr.config.parse import check_one_of as _one_of
from affsr.config.parse import check_ranges as _check
from affsr.config.parse import from_dict
from affsr.config.training import CONSTRAINTS, MethodConfig, TrainConfig
from affsr.errors import ConfigError

#: Reference upsamplers evaluate makes without a checkpoint (affsr.evaluation.reference_outputs).
REFERENCES: tuple[str, ...] = ("bicubic", "pinv")


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluation: how many test outputs to keep for the figures; reference upsamplers; and the
    method whose density model scores every output (held-out cross-entropy; "" for none)."""

    n_samples: int = 8
    references: tuple[str, ...] = ("bicubic", "pinv")
    density: str = ""
    #: Training steps of each c2st classifier (affsr.evaluation.c2st; batch 32, 2 folds). 200 on the demo
    #: sets; tiny test configs use a few, a realism study more (the classifier must be able to win).
    c2st_steps: int = 200
    #: The studies whose claim verdicts results/claims.md shows side by side, where their results exist
    #: (each in its own ``workdir``): the demo decides most claims, the CPU tier the realism claim.
    tiers: tuple[str, ...] = ("demo", "cpu")

    def __post_init__(self) -> None:
        _check(self, at_least_one=("n_samples", "c2st_steps"), counts=("n_samples", "c2st_steps"))
        for ref in self.references:
            _one_of(ref, "references", REFERENCES)
        for tier in self.tiers:
            _one_of(tier, "tiers", STUDIES)


@dataclass(frozen=True)
class ToyOverride:
    """What the 2-D toy changes of a params.yaml method: loop settings (``train``: keys of
    :class:`TrainConfig`), the objective's ``options`` (keys of its ``Options``), laid over the
    method's own options, and for a soft method its ``consistency_weight`` on the toy (nats per point;
    default: the toy's ``consistency_weight``)."""

    train: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    consistency_weight: float | None = None

    def __post_init__(self) -> None:
        w = self.consistency_weight
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w < float("inf")):
            raise ValueError(f"consistency_weight: must be a number ≥ 0, got {w!r}")


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
    #: Weight w of the soft penalty w·|x − Aŷ| of a soft method on the toy (nats per point), where
    #: ``objectives`` / ``methods`` give it none (theirs: calibrated per method, docs/toy.md).
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
        counts = ("restarts", "hidden", "dae_hidden", "kde_samples", "eval_samples", "curve_points")
        _check(self, at_least_one=counts, counts=counts,
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
        _check(self, at_least_one=("threads", "mem_mb", "runtime"), non_negative=("gpu",),
               counts=("threads", "mem_mb", "runtime", "gpu"))


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

    def __post_init__(self) -> None:
        if not 0 <= self.seed < SEED_LIMIT:
            raise ValueError(f"seed: must be in [0, 2^32) (numpy refuses negative seeds; affsr/config/limits.py), "
                             f"got {self.seed}")


@dataclass(frozen=True)
class RunSettings:
    """Typed view of one resolved run (what :func:`affsr.params.resolve` returns), checked again on the
    way in; a checkpoint carries it (plus the ``data`` it was trained on), so a checkpoint is usable
    without params.yaml. The objective name is checked where it is looked up (:mod:`affsr.training.build`)."""

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
