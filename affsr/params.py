"""params.yaml → validated :class:`~affsr.config.Params` → the flat settings of one run, data set or toy.

Every value is checked here, once, when params are loaded — so ``snakemake -n`` already refuses a bad
value with one line naming the dotted key and where it came from (params.yaml or ``--config``), and no
training job starts with it. The ranges of each section live in its dataclass (:mod:`affsr.config`) and
in each objective's ``Options``; this module adds the checks that need the other packages: operator
kinds, objective and source names, guides, the held-out density model, the toy's overrides — and each
value's consequence: A's kernel against every HR size, the sizes an embedded source can give, and the
memory each job needs at least against its ``resources: mem_mb`` (the rules: :mod:`affsr.config.limits`).

``resolve(params, dataset, method)`` turns the whole file into the flat, JSON-able settings of one run.
Snakemake passes exactly that dict to the CLI (so a change in params.yaml reruns exactly the runs it
affects), and the CLI accepts the same dict, or resolves it itself from params.yaml when used by hand.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from affsr.config.data import SPLITS, DatasetConfig, OperatorConfig
from affsr.config.limits import EVALUATE_COPIES, GPU_MEMORY_MB, SEED_LIMIT, Term, batch_bytes, check_memory, image_bytes
from affsr.config.networks import GeneratorConfig
from affsr.config.parse import check_choice, close_match_hint, from_dict
from affsr.config.study import RULES_WITH_RESOURCES, STUDIES, STUDY_SECTIONS, Params, ResourceConfig
from affsr.config.training import TrainConfig
from affsr.data.sources import SOURCES, SourceSpec
from affsr.data.splits import band_ranges
from affsr.errors import ConfigError, DataError
from affsr.methods import available_objectives, guided_by, options_class, super_resolves


def _check_sources(params: Params) -> None:
    for name, ds in params.datasets.items():
        where = f"params.datasets.{name}"
        check_choice(ds.source, sorted(SOURCES), f"{where}.source", "a known source")
        if ds.hr_size % params.operator.scale:
            raise ConfigError(f"{where}.hr_size: {ds.hr_size} is not divisible by operator.scale "
                              f"{params.operator.scale}")
        kind = SOURCES[ds.source].input
        if kind == "download" and not (ds.download.urls and ds.download.filename):
            raise ConfigError(f"{where}.download: source '{ds.source}' is downloaded; set download.urls and "
                              "download.filename")
        if kind == "path" and not ds.path:
            raise ConfigError(f"{where}.path: source '{ds.source}' reads a local folder; set its path")
        if kind == "embedded":
            _check_fits_source(where, ds, params.operator.scale, params.seed)


@functools.cache
def _patch_image_shapes(source: str) -> tuple[tuple[int, int], ...]:
    """(H, W) of each image of an embedded patch source (read once per process: ≈ 0.3 s)."""
    from affsr.data.patches import load_source

    return tuple(img.shape[1:] for img in load_source(source))


@functools.cache
def _collection(source: str, seed: int) -> tuple[dict[str, int], Any]:
    """(images per split, the first training image) of an embedded image collection."""
    with SOURCES[source].load(SourceSpec(), seed) as images:
        return {split: len(images.splits[split]) for split in SPLITS}, images.read(images.splits["train"][0])


def _check_fits_source(where: str, ds: DatasetConfig, scale: int, seed: int) -> None:
    """What an embedded source holds is known before anything is prepared (it ships with scikit-image):
    a patch must fit inside every split's row band of every image (:mod:`affsr.data.patches`), and a crop
    box inside a collection's images (checked on its first, by the very function that crops)."""
    if SOURCES[ds.source].layout == "patches":
        limit = min(min(*(r1 - r0 for r0, r1 in band_ranges(height).values()), width)
                    for height, width in _patch_image_shapes(ds.source))
        if ds.hr_size > limit:
            raise ConfigError(f"{where}.hr_size: {ds.hr_size} does not fit source '{ds.source}': patches are cut from "
                              f"row bands of its images (75 / 12.5 / 12.5 % of the rows), the smallest {limit} px; "
                              f"choose hr_size ≤ {limit // scale * scale} (a multiple of operator.scale)")
        return
    from affsr.data.image_files import crop_resize

    try:
        crop_resize(_collection(ds.source, seed)[1], 1, ds.crop)  # 1 px: the box is checked, nothing resized
    except DataError as err:
        raise ConfigError(f"{where}.crop: {err} (source '{ds.source}')") from None


def _check_operator(params: Params) -> None:
    """The kind of A and the settings it needs (the kinds: :data:`affsr.operators.kinds.KINDS`), and A's
    kernel against every data set's HR size: A wraps an image around at most once
    (:meth:`affsr.operators.Downsampling.lr_shape`), so ``hr_size`` must be at least the kernel's side.

    A is built to see its kernel — whatever kind sets it, from whichever settings. The settings measured in
    HR pixels that may set a side (``size``, ``length``) are first capped at twice the largest hr_size
    plus 2: a kernel that large exceeds every HR image at any angle, so the verdict is the same, and a
    ``size: 1000000000`` costs nothing to build. Blamed is the capped setting when the kernel is larger than
    every data set, else the data set's ``hr_size``."""
    from affsr.operators.kinds import build_operator, check_operator  # torch: imported when params are validated

    op = params.operator
    check_operator(op, "params.operator")
    cap = 2 * max(ds.hr_size for ds in params.datasets.values()) + 2
    capped = [key for key in ("size", "length") if getattr(op, key) > cap]
    kh, kw = build_operator(dataclasses.replace(op, **{key: cap for key in capped})).kernel_shape
    side = max(kh, kw)
    settings = f"(operator: {', '.join(f'{k} {v}' for k, v in op.recorded().items())})"
    small = {name: ds.hr_size for name, ds in params.datasets.items() if ds.hr_size < side}
    if capped and len(small) == len(params.datasets):
        raise ConfigError(f"params.operator.{capped[0]}: {getattr(op, capped[0])} makes A's kernel {settings} larger "
                          f"than every data set's hr_size (largest {max(small.values())}); A needs an HR image at "
                          f"least as large as its kernel: lower operator.{capped[0]}")
    if small:
        name, hr_size = next(iter(small.items()))
        needed = -(-side // op.scale) * op.scale  # the kernel's side rounded up to a multiple of the scale
        raise ConfigError(f"params.datasets.{name}.hr_size: {hr_size} is smaller than A's {kh}×{kw} kernel "
                          f"{settings}; A needs an HR image at least as large as its kernel: set hr_size ≥ {needed} "
                          "(a multiple of operator.scale) or choose a smaller kernel")


def _check_methods(params: Params) -> None:
    objectives = available_objectives()
    for name, method in params.methods.items():
        where = f"params.methods.{name}"
        check_choice(method.objective, objectives, f"{where}.objective")
        from_dict(options_class(method.objective), method.options, f"{where}.options")
        if method.guide:
            check_choice(method.guide, list(params.methods), f"{where}.guide", "a method in params.methods")
            needed = guided_by(method.objective)
            if params.methods[method.guide].objective != needed:
                raise ConfigError(f"{where}.guide: '{method.guide}' is a '{params.methods[method.guide].objective}' "
                                  f"run; objective '{method.objective}' needs a '{needed or 'no'}' run")
        generator_of(params, name)
        _given(TrainConfig, {**dataclasses.asdict(params.train), **method.train}, f"{where}.train")
        if not 0 <= params.seed + method.seed_offset < SEED_LIMIT:
            raise ConfigError(f"{where}.seed_offset: seed {params.seed} + seed_offset {method.seed_offset} must lie "
                              "in [0, 2^32) (numpy refuses negative seeds; affsr/config/limits.py)")


def _images(params: Params, dataset: str, split: str) -> int:
    """How many images of ``split`` a data set has: its count (``n_<split>``), which for an embedded image
    collection is a cap at what the collection holds."""
    ds = params.datasets[dataset]
    count = getattr(ds, f"n_{split}")
    if SOURCES[ds.source].input == "embedded" and SOURCES[ds.source].layout == "images":
        count = min(count, _collection(ds.source, params.seed)[0][split])
    return count


def _check_memory(params: Params) -> None:
    """Each job against its ``resources: mem_mb`` (the rules: :mod:`affsr.config.limits`): ``prepare`` holds
    every split; ``train`` its split and — on a CPU job — its batch (a GPU job's batch is GPU memory, set
    against :data:`~affsr.config.limits.GPU_MEMORY_MB`); ``evaluate`` the test split with its outputs. Every
    estimate is a lower bound, so only a clear excess is refused, naming the count that takes the most."""
    scale, train_res = params.operator.scale, rule_resources(params, "train")
    for name, ds in params.datasets.items():
        channels, hr = 3 if SOURCES[ds.source].colour else 1, ds.hr_size
        shape, each = f"{channels}×{hr}×{hr}", image_bytes(channels, hr, scale)
        splits = {split: Term(f"params.datasets.{name}.n_{split}", _images(params, name, split), each,
                              f"{split} images of {shape}") for split in SPLITS}
        if ds.mirror_train:
            splits["train"] = Term(splits["train"].key, splits["train"].count, 2 * each,
                                   f"train images of {shape} (and their mirrors)")
        check_memory(list(splits.values()), rule_resources(params, "prepare").mem_mb, f"a prepare job ({name})",
                     "resources.prepare.mem_mb")
        test = Term(splits["test"].key, splits["test"].count, each + EVALUATE_COPIES * 4 * channels * hr**2,
                    f"test images of {shape} (each with its output, as floats)")
        check_memory([test], rule_resources(params, "evaluate").mem_mb, f"an evaluate job ({name})",
                     "resources.evaluate.mem_mb")
        for method, m in params.methods.items():
            train = resolve(params, name, method)["train"]
            job = f"a train job ({method} on {name})"
            maps = generator_of(params, method)["width"] if super_resolves(m.objective) else 0
            key = f"methods.{method}.train.batch_size" if "batch_size" in m.train else "train.batch_size"
            batch = Term(f"params.{key}", train["batch_size"] if train["steps"] else 0,  # 0 steps: no batch
                         batch_bytes(channels, hr, maps), f"images per batch of {shape}")
            if train_res.gpu:
                check_memory([splits[m.split]], train_res.mem_mb, job, "resources.train.mem_mb")
                check_memory([batch], GPU_MEMORY_MB, f"{job} on its GPU")
            else:
                check_memory([splits[m.split], batch], train_res.mem_mb, job, "resources.train.mem_mb")


def _check_evaluate(params: Params) -> None:
    density = params.evaluate.density
    if density and (density not in params.methods or params.methods[density].objective != "density_fit"):
        raise ConfigError(f"params.evaluate.density: '{density}' is not a density_fit method in params.methods"
                          f"{close_match_hint(density, params.methods)}")
    if density and params.methods[density].split == "train":
        raise ConfigError(f"params.evaluate.density: '{density}' trains on the train split; the held-out "
                          "model must use a split no method trained on (set its `split: val`)")


def validate(params: Params) -> Params:
    """Cross-field checks that one section's types and ranges cannot express, and the consequences of the
    values: A's kernel against the HR sizes, sizes against embedded sources, each job's memory."""
    for rule in params.resources:
        check_choice(rule, RULES_WITH_RESOURCES, f"params.resources.{rule}", "a rule with resources")
    if not params.datasets:
        raise ConfigError("params.datasets: no data sets given")
    _check_operator(params)
    _check_sources(params)
    _check_methods(params)
    _check_memory(params)
    _check_evaluate(params)
    resolve_toy(params)  # every toy run's merged settings and options, checked now
    return params


def _merge(base: Any, override: Any) -> Any:
    """``override`` laid over ``base``: mappings merge key by key, anything else is replaced; a key whose
    override is null is removed (a study section leaves out a data set or a method: ``natural: null``)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = {**base, **{k: _merge(base.get(k), v) for k, v in override.items()}}
        return {k: v for k, v in merged.items() if not (v is None and k in override)}
    return override


#: Study → the study whose section is merged first: ``smoke`` is the paper scale with a few images and
#: steps (its section lays only the shrinking over ``paper``).
STUDY_EXTENDS = {"smoke": "paper"}


def select_study(data: dict) -> dict:
    """The settings of the chosen study: the file as it is for ``study: demo``; for any other study the
    section of its name merged over the file (``paper``: the one switch from CPU demo to paper scale;
    ``cpu``: the realism tier); a study in :data:`STUDY_EXTENDS` has its base study's section merged
    first (``smoke``: file, then ``paper``, then ``smoke``)."""
    if not isinstance(data, dict):
        raise ConfigError(f"params: expected a mapping, got {data!r}")
    study = data.get("study", "demo")
    check_choice(study, STUDIES, "params.study")
    allowed = sorted({f.name for f in dataclasses.fields(Params)} - {"study", *STUDY_SECTIONS})
    for name in STUDY_SECTIONS:
        section = data.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"params.{name}: expected a mapping, got {section!r}")
        for key in section:
            if key not in allowed:
                raise ConfigError(f"params.{name}.{key}: unknown key{close_match_hint(key, allowed)}; allowed "
                                  f"keys: {', '.join(allowed)}")
    for name in (STUDY_EXTENDS.get(study), study):
        if name and name != "demo":
            data = _merge(data, data.get(name) or {})
    return data


def _from_command_line(message: str, command_line: Mapping, study: str) -> bool:
    """Does the dotted key a message starts with ("params.a.b: ...") lie in the ``--config`` values — at the
    top, or in the section of the study it was checked in (``--config 'cpu={datasets: ...}'``)?"""
    found = re.match(r"params\.([^\s:]+):", message)
    if not found or not command_line:
        return False
    named = re.search(r"\(in the (\w+) study", message)  # a demo run checks the other studies too
    study = named.group(1) if named else study
    sections = [command_line.get(name) for name in (STUDY_EXTENDS.get(study), study) if name in STUDY_SECTIONS]
    for root in [command_line, *(section for section in sections if isinstance(section, Mapping))]:
        node: Any = root
        for part in re.split(r"\.|\[", found.group(1)):
            if not isinstance(node, Mapping):
                return True  # a --config value replaced this whole subtree
            if part not in node:
                break
            node = node[part]
        else:
            return True
    return False


#: How YAML spells null. Snakemake's ``--config`` reads nested values as text, so a null arrives as 'null'.
NULL_TEXT = ("null", "Null", "NULL", "~")


def _command_line_nulls(data: dict, command_line: Mapping, in_section: bool = False, top: bool = True) -> dict:
    """``data`` with each null given in ``--config`` read as a null: inside a study section it stays one
    (the section's merge removes that key, as in params.yaml); elsewhere the key is removed, so its default
    applies (``--config 'datasets={natural: null}'``: the study without that data set)."""
    out = dict(data)
    for key, value in command_line.items():
        if key not in out:
            continue
        if isinstance(value, str) and value in NULL_TEXT:
            if in_section:
                out[key] = None
            else:
                del out[key]
        elif isinstance(value, Mapping) and isinstance(out[key], dict):
            out[key] = _command_line_nulls(out[key], value, in_section or (top and key in STUDY_SECTIONS), top=False)
    return out


def load_params(source: str | Path | dict, command_line: Mapping | None = None) -> Params:
    """Read and validate params.yaml (or an already-parsed dict, e.g. Snakemake's ``config``).

    ``command_line``: the ``--config`` values Snakemake merged into ``config`` (the workflow passes them,
    ``{}`` when there are none): an error says where the bad value came from — ``--config`` or
    params.yaml — so the user looks in the right place, and a null given there is read as one (Snakemake
    passes it as the text 'null'). A file's errors name the file.
    """
    origin = "params.yaml"
    if isinstance(source, dict):
        data = source
    else:
        path = origin = Path(source)
        if not path.exists():
            raise ConfigError(f"{path}: params file not found")
        data = read_yaml(path)
    if command_line and isinstance(data, dict):
        data = _command_line_nulls(data, command_line)
    try:
        params = validate(from_dict(Params, select_study(data)))
        if params.study == "demo":
            # Check the other studies too, so a typo there shows up now and not on the cluster.
            for name in STUDY_SECTIONS:
                if getattr(params, name):
                    try:
                        validate(from_dict(Params, select_study({**data, "study": name})))
                    except ConfigError as err:
                        raise ConfigError(f"{err} (in the {name} study: params.{name} merged over the file)") from None
    except ConfigError as err:
        if command_line is None and isinstance(source, dict):
            raise  # a dict of unknown origin (tests, scripts): the dotted key alone
        study = data.get("study", "demo") if isinstance(data, dict) else "demo"
        where = "--config" if _from_command_line(str(err), command_line or {}, study) else str(origin)
        raise ConfigError(f"{where}: {err}") from None
    return params


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last silently:
    `lr:` twice trains with the second and no one notices)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key '{key}' appears twice in one section; "
                                  "keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """A YAML file, strictly: ConfigError naming the file for invalid YAML or a duplicated key."""
    try:
        return yaml.load(Path(path).read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        # PyYAML's own message spans five lines (context, the line quoted, a caret), which broke the CLI's
        # one `affsr: error:` line: keep where and what, on one line.
        mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None) or str(err)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML ({where}{' '.join(problem.split())})") from None
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def _check_name(name: str, known: Mapping, what: str) -> None:
    if name not in known:
        raise ConfigError(f"{what} '{name}' is not in params.{what}s{close_match_hint(name, known)}: "
                          f"{', '.join(known)}")


def _given(cls: type, values: dict, where: str) -> dict:
    """``values`` checked as settings of dataclass ``cls`` and converted to its types, the keys given only.
    Why: a method's overrides (``train``, ``generator``, ``options``) are plain mappings until here, and
    Snakemake's ``--config`` passes their numbers and booleans as text ('5', 'false')."""
    parsed = from_dict(cls, values, where)
    return {key: getattr(parsed, key) for key in values}


def generator_of(params: Params, method: str) -> dict:
    """The generator settings of one method: the ``generator`` section with the method's overrides."""
    return _given(GeneratorConfig, {**dataclasses.asdict(params.generator), **params.methods[method].generator},
                  f"params.methods.{method}.generator")


def resolve(params: Params, dataset: str, method: str) -> dict:
    """Everything one training run needs, as a plain JSON-able dict (method overrides applied)."""
    _check_name(dataset, params.datasets, "dataset")
    _check_name(method, params.methods, "method")
    m = params.methods[method]
    train = _given(TrainConfig, {**dataclasses.asdict(params.train), **m.train}, f"params.methods.{method}.train")
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
        "options": _given(options_class(m.objective), m.options, f"params.methods.{method}.options"),
        "train": train,
        "operator": params.operator.recorded(),
        "generator": generator_of(params, method),
        "discriminator": {"widths": list(params.discriminator.widths)},
        "denoiser": dataclasses.asdict(params.denoiser),
        "density": dataclasses.asdict(params.density),
    }


def operator_named(kind: str, scale: int, kernel_file: str | None = None,
                   boundary: str = "circular") -> OperatorConfig:
    """A by name at ``scale`` (``affsr upscale/downsample --operator``; ``kernel_file`` for kind file;
    ``boundary`` circular or reflect), with each kind's defaults; a bad combination is a ConfigError
    naming --operator."""
    from affsr.operators.kinds import check_operator  # torch: only where an operator is named

    values = {"kind": kind, "scale": int(scale), "boundary": boundary,
              **({"kernel_file": kernel_file} if kernel_file else {})}
    cfg = from_dict(OperatorConfig, values, "--operator")
    check_operator(cfg, "--operator")
    return cfg


def rule_resources(params: Params, rule: str) -> ResourceConfig:
    """Threads, memory, runtime and GPUs of one rule's jobs (defaults where params gives none)."""
    return params.resources.get(rule, ResourceConfig())


def resolve_dataset(params: Params, dataset: str) -> dict:
    """What ``affsr prepare`` needs for one data set: its source and sizes, the seed and A."""
    _check_name(dataset, params.datasets, "dataset")
    ds = dataclasses.asdict(params.datasets[dataset])
    ds.pop("steps_scale")  # a training setting: changing it must not remake the data
    return {
        **ds,
        "seed": params.seed,
        "operator": params.operator.recorded(),
    }


#: Seed slots of the toy's runs: SR method k trains with seed·1000 + k, guide k with seed·1000 + 99 + k.
TOY_GUIDE_SLOT = 99


def _toy_run(params: Params, name: str, slot: int) -> dict:
    """One toy run: the method's objective, constraint and options with the toy's overrides."""
    toy, method = params.toy, params.methods[name]
    layers = [toy.objectives.get(method.objective), toy.methods.get(name)]
    train = {**toy.train}
    options = {**method.options}
    weight = toy.consistency_weight if method.constraint == "soft" else method.consistency_weight
    for layer in filter(None, layers):
        train.update(layer.train)
        options.update(layer.options)
        if layer.consistency_weight is not None and method.constraint == "soft":
            weight = float(layer.consistency_weight)
    where = f"params.toy (the {name} run)"
    train = _given(TrainConfig, train, f"{where}.train")
    steps = train.get("steps", TrainConfig.steps)
    # the toy's log and (unused) checkpoint interval follow its steps: 50 log rows per run
    train.update(log_every=max(1, steps // 50), checkpoint_every=max(1, steps))
    options = _given(options_class(method.objective), options, f"{where}.options")
    return {"objective": method.objective, "constraint": method.constraint, "consistency_weight": weight,
            "options": options, "train": train, "guide": method.guide, "seed_slot": slot}


def toy_methods(params: Params) -> list[str]:
    """The super-resolving methods of params.yaml the toy trains (not in ``toy.skip``), in params order.
    Methods with the constraint ``projected_box`` are left out: its [0, 1] box is for images."""
    return [m for m, cfg in params.methods.items()
            if super_resolves(cfg.objective) and m not in params.toy.skip and cfg.constraint != "projected_box"]


def resolve_toy(params: Params) -> dict:
    """What ``affsr toy`` needs: the toy's sizes and ground-truth settings, the seed, and the resolved
    settings of every toy run (``methods``, in order) and of the guides they name (``guides``)."""
    toy = params.toy
    for name in toy.skip:
        check_choice(name, list(params.methods), "params.toy.skip", "a method in params.methods")
    for name in toy.methods:
        check_choice(name, list(params.methods), f"params.toy.methods.{name}", "a method in params.methods")
    for name in toy.objectives:
        check_choice(name, available_objectives(), f"params.toy.objectives.{name}", "an objective")
    methods = {name: _toy_run(params, name, slot) for slot, name in enumerate(toy_methods(params))}
    guide_names = list(dict.fromkeys(run["guide"] for run in methods.values() if run["guide"]))
    guides = {name: _toy_run(params, name, TOY_GUIDE_SLOT + k) for k, name in enumerate(guide_names)}
    sizes = {k: v for k, v in dataclasses.asdict(toy).items()
             if k not in ("train", "objectives", "methods", "skip", "consistency_weight")}
    return {"seed": params.seed, "toy": sizes, "methods": methods, "guides": guides}
