"""Mappings (parsed YAML/JSON) → frozen dataclasses, strictly: the one parser of every setting.

Why strict: a typo such as ``stpes: 100`` silently falling back to a default is the most common way a
study runs the wrong experiment. Every unknown key is an error naming its dotted path and the closest
allowed key; every wrong type names the key, the value and the expected type. A dataclass's own
``__post_init__`` range checks raise ``ValueError("key: must be ...")``, reported under the dotted path
of the mapping it was built from.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Iterable

from affsr.config.limits import MAX_COUNT
from affsr.errors import ConfigError

#: Integers of params.yaml are stored as int64 wherever they meet numpy or torch.
INT64_LIMIT = 2**63


def close_match_hint(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or "" — the one close-match hint of affsr."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_choice(value: str, choices: Iterable[str], where: str, what: str = "") -> None:
    """ConfigError unless ``value`` is one of ``choices``: names the key, the value, a close match and
    the allowed values (``what``: e.g. "a method in params.methods")."""
    choices = list(choices)
    if value not in choices:
        allowed = what or f"one of: {', '.join(map(str, choices))}"
        raise ConfigError(f"{where}: '{value}' is not {allowed}{close_match_hint(value, choices)}"
                          + (f"; known: {', '.join(map(str, choices))}" if what else ""))


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
    if origin in (typing.Union, types.UnionType):  # `float | None`: None, or checked as the one other type
        others = [a for a in typing.get_args(annotation) if a is not type(None)]
        if bool in others and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"  # `str | bool` (compile: auto | true | false) from --config text
        if value is None or len(others) != 1:
            return value
        return _convert(value, others[0], where)
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):  # Snakemake's --config passes text
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():  # --config 'train={steps: 5}'
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if not -INT64_LIMIT <= value < INT64_LIMIT:  # numpy and torch hold int64: a larger one overflows there
            raise ConfigError(f"{where}: {value} is out of range: an integer setting must lie within ±2^63")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML reads 2e-4 (no dot) as a string
            text = value.replace(".", "", 1) if value.lower().lstrip("+-") in (".inf", ".nan") else value
            try:  # YAML's own .inf and .nan, as --config passes them, are numbers too (refused below)
                value = float(text)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):  # .inf / .nan pass every range check and crash the job later
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
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
            raise ConfigError(f"{where}.{key}: unknown key{close_match_hint(key, fields)}; allowed keys: "
                              f"{', '.join(sorted(fields))}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key is missing")
    try:
        return cls(**kwargs)
    except ValueError as err:  # the dataclass's own range check: "key: must be ..."
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{where}.{err}") from None


# ---- range checks of settings dataclasses (their __post_init__; from_dict reports them under the key) ----


def check_ranges(obj: object, *, positive: tuple[str, ...] = (), at_least_one: tuple[str, ...] = (),
                 non_negative: tuple[str, ...] = (), fractions: tuple[str, ...] = (),
                 counts: tuple[str, ...] = ()) -> None:
    """Range checks of a settings dataclass: ``ValueError("key: must be ...")`` for the first bad field
    (``fractions``: in [0, 1); ``counts``: integers — or lists of them — at most
    :data:`affsr.config.limits.MAX_COUNT`, the rule for every count of steps, images, maps or layers)."""
    for key in positive:
        if not getattr(obj, key) > 0:
            raise ValueError(f"{key}: must be > 0, got {getattr(obj, key)!r}")
    for key in at_least_one:
        if getattr(obj, key) < 1:
            raise ValueError(f"{key}: must be ≥ 1, got {getattr(obj, key)!r}")
    for key in non_negative:
        if getattr(obj, key) < 0:
            raise ValueError(f"{key}: must be ≥ 0, got {getattr(obj, key)!r}")
    for key in fractions:
        if not 0 <= getattr(obj, key) < 1:
            raise ValueError(f"{key}: must be in [0, 1), got {getattr(obj, key)!r}")
    for key in counts:
        value = getattr(obj, key)
        if max(value if isinstance(value, tuple) else (value,), default=0) > MAX_COUNT:
            raise ValueError(f"{key}: must be at most {MAX_COUNT:,} (10^9, the limit of every count: "
                             f"affsr/config/limits.py), got {value!r}")


def check_one_of(value: str, key: str, choices: tuple[str, ...]) -> None:
    """``ValueError("key: 'value' is not one of: ...")`` for a dataclass's ``__post_init__``."""
    if value not in choices:
        raise ValueError(f"{key}: '{value}' is not one of: {', '.join(choices)}")
