"""params.yaml → frozen, typed settings, validated once.

Why strict: a typo such as ``stpes: 100`` silently falling back to a default is the most common way a
study runs the wrong experiment. Every unknown key is an error naming its dotted path and the closest
allowed key; every wrong type names the key, the value and the expected type.

``resolve(params, dataset, method)`` turns the whole file into the flat, JSON-able settings of one run.
Snakemake passes exactly that dict to the CLI (so a change in params.yaml reruns exactly the runs it
affects), and the CLI accepts the same dict, or resolves it itself from params.yaml when used by hand.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONSTRAINTS = ("projected", "soft", "none")
SPLITS = ("train", "val")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A user mistake in params.yaml or in the settings given to the CLI; the message names the key."""


@dataclass(frozen=True)
class OperatorConfig:
    """The degradation A (paper: 9×9 Gaussian, stride 4; σ not stated, we default to 1 HR pixel)."""

    kind: str = "gaussian"
    sigma: float = 1.0
    size: int = 9
    scale: int = 4


@dataclass(frozen=True)
class DownloadConfig:
    """Where an external source's file comes from; ``sha256`` (and ``md5`` if given) is checked after
    the download. An empty sha256 is accepted once and its digest printed, to be pinned here."""

    url: str = ""
    sha256: str = ""
    md5: str = ""
    filename: str = ""


@dataclass(frozen=True)
class DatasetConfig:
    """One data set: an image source (``affsr.sources``) made into HR images of ``hr_size``.

    ``n_train/n_val/n_test``: patch counts (patch sources) or most images per split (image collections).
    ``crop``: image collections only, the box cut before resizing to hr_size: [] = largest centred
    square, [size] = centred square, [top, left, size]. ``download``: the file of a downloaded source.
    ``path``: the folder of a local source (ImageNet). ``members``: archive members to use (textures).
    ``min_bytes`` / ``min_files``: ImageNet's file-size filter and expected image count.
    ``steps_scale``: multiplies every run's steps on this data set (the CPU budget; 1 at paper scale).
    ``mirror_train``: add the left-right mirror image of every training image (LR made from the mirrored
    HR by A, so pairs stay exact): twice the training images where a set is tiny (the 74 demo faces).
    """

    source: str
    hr_size: int = 32
    n_train: int = 2048
    n_val: int = 128
    n_test: int = 128
    crop: tuple[int, ...] = ()
    download: DownloadConfig = DownloadConfig()
    path: str = ""
    members: str = "*"
    min_bytes: int = 0
    min_files: int = 0
    steps_scale: float = 1.0
    mirror_train: bool = False


@dataclass(frozen=True)
class GeneratorConfig:
    """Residual conv net on the LR grid + sub-pixel upsampling (SRResNet/ESPCN-like)."""

    width: int = 32
    blocks: int = 4
    noise: int = 0  # maps of N(0, 1) noise concatenated to the LR input: > 0 = a stochastic generator
    skip: bool = False  # predict a residual over the cubic upsampling of the input (see nets.Generator)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Strided conv net; one stride-2 layer per entry of ``widths`` (paper, grass: 32/64/128/256)."""

    widths: tuple[int, ...] = (32, 64, 128, 256)


@dataclass(frozen=True)
class DenoiserConfig:
    """The denoising auto-encoder of AffDG/SoftDG (paper, grass: 4 conv layers × 128 maps)."""

    width: int = 64
    depth: int = 4


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


@dataclass(frozen=True)
class ResourceConfig:
    """What one job of a workflow rule asks the scheduler for (Snakemake ``threads``/``resources``;
    the SLURM executor turns them into sbatch options)."""

    threads: int = 1
    mem_mb: int = 2000
    runtime: int = 60  # minutes
    gpu: int = 0


RULES_WITH_RESOURCES = ("download", "prepare", "train", "evaluate", "toy")
#: The studies of one params.yaml: ``demo`` is the file as it is; every other one is the file with the
#: section of that name merged over it (``paper``: paper scale on GPUs; ``cpu``: the realism tier).
STUDIES = ("demo", "paper", "cpu")
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
    toy: dict = field(default_factory=dict)  # affsr.toy.ToyConfig; validated there


# ----------------------------------------------------------------------------------------- parsing


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """Check/convert one value against a type annotation; errors name the dotted key."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    if origin is dict or annotation is dict:  # bare `dict` (method options/train) too
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        _, value_type = typing.get_args(annotation) or (str, Any)
        return {str(k): _convert(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_type = typing.get_args(annotation)[0]
        return tuple(_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if annotation is Any or origin in (typing.Union, types.UnionType):
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML reads 2e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: Any, where: str = "params") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys with a close-match suggestion."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"{where}.{key}: unknown key{hint}; allowed keys: {', '.join(sorted(fields))}"
            )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key is missing")
    return cls(**kwargs)


def _positive(value: float, where: str, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ConfigError(f"{where}: must be {bound}, got {value!r}")


def _check_generator(generator: GeneratorConfig, where: str) -> None:
    if generator.width < 1:
        raise ConfigError(f"{where}.width: must be ≥ 1, got {generator.width}")
    if generator.blocks < 0:
        raise ConfigError(f"{where}.blocks: must be ≥ 0, got {generator.blocks}")
    if generator.noise < 0:
        raise ConfigError(f"{where}.noise: must be ≥ 0, got {generator.noise}")


def _check_train(train: TrainConfig, where: str) -> None:
    """Ranges of the loop's settings (``where``: the dotted key they came from)."""
    for key in ("steps", "batch_size", "log_every", "checkpoint_every"):
        _positive(getattr(train, key), f"{where}.{key}", allow_zero=key == "steps")
    _positive(train.lr, f"{where}.lr")
    for key in ("beta1", "beta2"):
        if not 0 <= getattr(train, key) < 1:
            raise ConfigError(f"{where}.{key}: must be in [0, 1), got {getattr(train, key)!r}")
    if train.device not in DEVICES:
        raise ConfigError(f"{where}.device: '{train.device}' is not one of {DEVICES}")
    for name, factor in train.lr_scale.items():
        _positive(factor, f"{where}.lr_scale.{name}")
    if not 0 <= train.ema < 1:
        raise ConfigError(f"{where}.ema: must be in [0, 1) (0 = no average), got {train.ema!r}")


def validate(params: Params) -> Params:
    """Cross-field checks that types alone cannot express."""
    from affsr.methods import available_objectives, options_class

    op = params.operator
    if op.kind not in ("gaussian", "box"):
        raise ConfigError(f"params.operator.kind: '{op.kind}' is not one of: gaussian, box")
    _positive(op.scale, "params.operator.scale")
    _positive(op.sigma, "params.operator.sigma")
    from affsr.sources import SOURCES

    if params.study not in STUDIES:
        raise ConfigError(f"params.study: '{params.study}' is not one of: {', '.join(STUDIES)}")
    for rule in params.resources:
        if rule not in RULES_WITH_RESOURCES:
            raise ConfigError(f"params.resources.{rule}: unknown rule; allowed: {', '.join(RULES_WITH_RESOURCES)}")
    if not params.datasets:
        raise ConfigError("params.datasets: no data sets given")
    for name, ds in params.datasets.items():
        where = f"params.datasets.{name}"
        if ds.source not in SOURCES:
            close = difflib.get_close_matches(ds.source, list(SOURCES), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}.source: '{ds.source}' is not a known source{hint}; known: "
                              f"{', '.join(sorted(SOURCES))}")
        for key in ("hr_size", "n_train", "n_val", "n_test", "steps_scale"):
            _positive(getattr(ds, key), f"{where}.{key}")
        if ds.hr_size % op.scale:
            raise ConfigError(
                f"{where}.hr_size: {ds.hr_size} is not divisible by operator.scale {op.scale}"
            )
        if len(ds.crop) not in (0, 1, 3) or any(v < 0 for v in ds.crop):
            raise ConfigError(f"{where}.crop: {list(ds.crop)} must be [], [size] or [top, left, size] (≥ 0)")
        kind = SOURCES[ds.source].input
        if kind == "download" and not (ds.download.url and ds.download.filename):
            raise ConfigError(f"{where}.download: source '{ds.source}' is downloaded; set download.url and "
                              "download.filename")
        if kind == "path" and not ds.path:
            raise ConfigError(f"{where}.path: source '{ds.source}' reads a local folder; set its path")
    _check_train(params.train, "params.train")
    _check_generator(params.generator, "params.generator")
    objectives = available_objectives()
    for name, method in params.methods.items():
        where = f"params.methods.{name}"
        if method.objective not in objectives:
            raise ConfigError(
                f"{where}.objective: '{method.objective}' is not one of: {', '.join(objectives)}"
            )
        if method.constraint not in CONSTRAINTS:
            raise ConfigError(
                f"{where}.constraint: '{method.constraint}' is not one of: {', '.join(CONSTRAINTS)}"
            )
        try:
            from_dict(options_class(method.objective), method.options, f"{where}.options")
        except ConfigError:
            raise
        except ValueError as err:  # an Options range check: "key: must be ..."
            raise ConfigError(f"{where}.options.{err}") from None
        if method.consistency_weight < 0:
            raise ConfigError(f"{where}.consistency_weight: must be ≥ 0, got {method.consistency_weight}")
        if method.split not in SPLITS:
            raise ConfigError(f"{where}.split: '{method.split}' is not one of: {', '.join(SPLITS)}")
        if method.guide and method.guide not in params.methods:
            raise ConfigError(
                f"{where}.guide: '{method.guide}' is not a method in params.methods: "
                f"{', '.join(params.methods)}"
            )
        generator = from_dict(GeneratorConfig, {**dataclasses.asdict(params.generator), **method.generator},
                              f"{where}.generator")
        _check_generator(generator, f"{where}.generator")
        merged = from_dict(TrainConfig, {**dataclasses.asdict(params.train), **method.train},
                           f"{where}.train")
        _check_train(merged, f"{where}.train")
    from affsr.toy import ToyConfig

    try:
        from_dict(ToyConfig, params.toy, "params.toy")
    except ConfigError:
        raise
    except ValueError as err:  # ToyConfig's own range checks
        raise ConfigError(f"params.toy: {err}") from None
    ev = params.evaluate
    if ev.c2st_steps < 1:
        raise ConfigError(f"params.evaluate.c2st_steps: must be ≥ 1, got {ev.c2st_steps}")
    for ref in ev.references:
        if ref not in ("bicubic", "pinv"):
            raise ConfigError(f"params.evaluate.references: '{ref}' is not one of: bicubic, pinv")
    if ev.density and (ev.density not in params.methods
                       or params.methods[ev.density].objective != "density_fit"):
        raise ConfigError(f"params.evaluate.density: '{ev.density}' is not a density_fit method in params.methods")
    if ev.density and params.methods[ev.density].split == "train":
        raise ConfigError(f"params.evaluate.density: '{ev.density}' trains on the train split; the held-out "
                          "model must use a split no method trained on (set its `split: val`)")
    return params


def _merge(base: Any, override: Any) -> Any:
    """``override`` laid over ``base``: mappings merge key by key, anything else is replaced; a key whose
    override is null is removed (a study section leaves out a data set or a method: ``natural: null``)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = {**base, **{k: _merge(base.get(k), v) for k, v in override.items()}}
        return {k: v for k, v in merged.items() if not (v is None and k in override)}
    return override


def select_study(data: dict) -> dict:
    """The settings of the chosen study: the file as it is for ``study: demo``; for any other study the
    section of its name merged over the file (``paper``: the one switch from CPU demo to paper scale;
    ``cpu``: the realism tier)."""
    if not isinstance(data, dict):
        raise ConfigError(f"params: expected a mapping, got {data!r}")
    study = data.get("study", "demo")
    if study not in STUDIES:
        raise ConfigError(f"params.study: '{study}' is not one of: {', '.join(STUDIES)}")
    allowed = {f.name for f in dataclasses.fields(Params)} - {"study", *STUDY_SECTIONS}
    for name in STUDY_SECTIONS:
        section = data.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"params.{name}: expected a mapping, got {section!r}")
        for key in section:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"params.{name}.{key}: unknown key{hint}; allowed keys: {', '.join(sorted(allowed))}")
    return data if study == "demo" else _merge(data, data.get(study) or {})


def load_params(source: str | Path | dict) -> Params:
    """Read and validate params.yaml (or an already-parsed dict, e.g. Snakemake's ``config``)."""
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"{path}: params file not found")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
    params = validate(from_dict(Params, select_study(data)))
    if params.study == "demo":
        # Check the other studies too, so a typo there shows up now and not on the cluster.
        for name in STUDY_SECTIONS:
            if getattr(params, name):
                try:
                    validate(from_dict(Params, select_study({**data, "study": name})))
                except ConfigError as err:
                    raise ConfigError(f"{err} (in the {name} study: params.{name} merged over the file)") from None
    return params


def resolve(params: Params, dataset: str, method: str) -> dict:
    """Everything one training run needs, as a plain JSON-able dict (method overrides applied)."""
    if dataset not in params.datasets:
        raise ConfigError(f"dataset '{dataset}' is not in params.datasets: {', '.join(params.datasets)}")
    if method not in params.methods:
        raise ConfigError(f"method '{method}' is not in params.methods: {', '.join(params.methods)}")
    m = params.methods[method]
    train = {**dataclasses.asdict(params.train), **m.train}
    # The data set's budget scales every run on it alike (affinit's 0 steps stay 0).
    train["steps"] = int(round(train["steps"] * params.datasets[dataset].steps_scale))
    return {
        "seed": params.seed + m.seed_offset,
        "dataset": dataset,
        "method": method,
        "objective": m.objective,
        "constraint": m.constraint,
        "consistency_weight": m.consistency_weight,
        "split": m.split,
        "guide": m.guide,
        "options": dict(m.options),
        "train": train,
        "operator": dataclasses.asdict(params.operator),
        "generator": {**dataclasses.asdict(params.generator), **m.generator},
        "discriminator": {"widths": list(params.discriminator.widths)},
        "denoiser": dataclasses.asdict(params.denoiser),
        "density": dataclasses.asdict(params.density),
    }


def rule_resources(params: Params, rule: str) -> ResourceConfig:
    """Threads, memory, runtime and GPUs of one rule's jobs (defaults where params gives none)."""
    return params.resources.get(rule, ResourceConfig())


def resolve_toy(params: Params) -> dict:
    """What ``affsr toy`` needs: the toy's own section and the seed."""
    return {"seed": params.seed, "toy": dict(params.toy)}


def resolve_dataset(params: Params, dataset: str) -> dict:
    """What ``affsr prepare`` needs for one data set: its source and sizes, the seed and A."""
    if dataset not in params.datasets:
        raise ConfigError(f"dataset '{dataset}' is not in params.datasets: {', '.join(params.datasets)}")
    ds = dataclasses.asdict(params.datasets[dataset])
    ds.pop("steps_scale")  # a training setting: changing it must not remake the data
    return {
        **ds,
        "seed": params.seed,
        "operator": dataclasses.asdict(params.operator),
    }


@dataclass(frozen=True)
class RunSettings:
    """Typed view of one resolved run (what ``resolve`` returns), checked again on the way in."""

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

    @classmethod
    def parse(cls, data: dict | str) -> "RunSettings":
        """From ``resolve``'s dict or its JSON text (as Snakemake passes it)."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as err:
                raise ConfigError(f"--settings is not valid JSON: {err}") from None
        settings = from_dict(cls, data, "settings")
        from affsr.methods import available_objectives

        if settings.objective not in available_objectives():
            raise ConfigError(f"settings.objective: '{settings.objective}' is not one of: "
                              f"{', '.join(available_objectives())}")
        if settings.constraint not in CONSTRAINTS:
            raise ConfigError(f"settings.constraint: '{settings.constraint}' is not one of: "
                              f"{', '.join(CONSTRAINTS)}")
        return settings

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["discriminator"]["widths"] = list(out["discriminator"]["widths"])
        return out
