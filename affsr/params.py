"""params.yaml → validated :class:`~affsr.config.Params` → the flat settings of one run, data set or toy.

Every value is checked here, once, when params are loaded — so ``snakemake -n`` already refuses a bad
value with one line naming the dotted key and where it came from (params.yaml or ``--config``), and no
training job starts with it. The ranges of each section live in its dataclass (:mod:`affsr.config`) and
in each objective's ``Options``; this module adds the checks that need the other packages: operator
kinds, objective and source names, guides, the held-out density model, the toy's overrides.

``resolve(params, dataset, method)`` turns the whole file into the flat, JSON-able settings of one run.
Snakemake passes exactly that dict to the CLI (so a change in params.yaml reruns exactly the runs it
affects), and the CLI accepts the same dict, or resolves it itself from params.yaml when used by hand.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from affsr.config.data import OperatorConfig
from affsr.config.networks import GeneratorConfig
from affsr.config.parse import check_choice, close_match_hint, from_dict
from affsr.config.study import RULES_WITH_RESOURCES, STUDIES, STUDY_SECTIONS, Params, ResourceConfig
from affsr.config.training import TrainConfig
from affsr.data.sources import SOURCES
from affsr.errors import ConfigError
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


def _check_operator(params: Params) -> None:
    """The kind of A and the settings it needs (the kinds: :data:`affsr.operators.kinds.KINDS`)."""
    from affsr.operators.kinds import check_operator  # torch: imported when params are validated

    check_operator(params.operator, "params.operator")


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
        from_dict(GeneratorConfig, {**dataclasses.asdict(params.generator), **method.generator},
                  f"{where}.generator")
        from_dict(TrainConfig, {**dataclasses.asdict(params.train), **method.train}, f"{where}.train")


def _check_evaluate(params: Params) -> None:
    density = params.evaluate.density
    if density and (density not in params.methods or params.methods[density].objective != "density_fit"):
        raise ConfigError(f"params.evaluate.density: '{density}' is not a density_fit method in params.methods"
                          f"{close_match_hint(density, params.methods)}")
    if density and params.methods[density].split == "train":
        raise ConfigError(f"params.evaluate.density: '{density}' trains on the train split; the held-out "
                          "model must use a split no method trained on (set its `split: val`)")


def validate(params: Params) -> Params:
    """Cross-field checks that one section's types and ranges cannot express."""
    for rule in params.resources:
        check_choice(rule, RULES_WITH_RESOURCES, f"params.resources.{rule}", "a rule with resources")
    if not params.datasets:
        raise ConfigError("params.datasets: no data sets given")
    _check_operator(params)
    _check_sources(params)
    _check_methods(params)
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


def _from_command_line(message: str, command_line: Mapping) -> bool:
    """Does the dotted key a message starts with ("params.a.b: ...") lie in the ``--config`` values?"""
    found = re.match(r"params\.([^\s:]+):", message)
    if not found or not command_line:
        return False
    node: Any = command_line
    for part in re.split(r"\.|\[", found.group(1)):
        if not isinstance(node, Mapping):
            return True  # a --config value replaced this whole subtree
        if part not in node:
            return False
        node = node[part]
    return True


def load_params(source: str | Path | dict, command_line: Mapping | None = None) -> Params:
    """Read and validate params.yaml (or an already-parsed dict, e.g. Snakemake's ``config``).

    ``command_line``: the ``--config`` values Snakemake merged into ``config`` (the workflow passes them,
    ``{}`` when there are none): an error says where the bad value came from — ``--config`` or
    params.yaml — so the user looks in the right place. A file's errors name the file.
    """
    origin = "params.yaml"
    if isinstance(source, dict):
        data = source
    else:
        path = origin = Path(source)
        if not path.exists():
            raise ConfigError(f"{path}: params file not found")
        data = read_yaml(path)
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
        where = "--config" if _from_command_line(str(err), command_line or {}) else str(origin)
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
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def _check_name(name: str, known: Mapping, what: str) -> None:
    if name not in known:
        raise ConfigError(f"{what} '{name}' is not in params.{what}s{close_match_hint(name, known)}: "
                          f"{', '.join(known)}")


def resolve(params: Params, dataset: str, method: str) -> dict:
    """Everything one training run needs, as a plain JSON-able dict (method overrides applied)."""
    _check_name(dataset, params.datasets, "dataset")
    _check_name(method, params.methods, "method")
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
        "operator": params.operator.recorded(),
        "generator": {**dataclasses.asdict(params.generator), **m.generator},
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
    steps = int(train.get("steps", TrainConfig.steps))
    # the toy's log and (unused) checkpoint interval follow its steps: 50 log rows per run
    train.update(log_every=max(1, steps // 50), checkpoint_every=max(1, steps))
    where = f"params.toy (the {name} run)"
    from_dict(TrainConfig, train, f"{where}.train")
    from_dict(options_class(method.objective), options, f"{where}.options")
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
