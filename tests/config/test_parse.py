"""Tests for affsr.config.parse: mappings → frozen dataclasses, strictly (unknown keys, wrong types, missing keys,
range checks under the dotted key), and the one close-match hint."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from affsr.config.data import OperatorConfig
from affsr.errors import ConfigError
from affsr.config.parse import check_choice, close_match_hint, from_dict


@dataclass(frozen=True)
class Inner:
    n: int = 1

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n: must be ≥ 1, got {self.n}")


@dataclass(frozen=True)
class Outer:
    name: str  # required
    steps: int = 10
    flag: bool = False
    rate: float = 0.5
    sizes: tuple[int, ...] = (1, 2)
    inner: Inner = Inner()
    scales: dict[str, float] = field(default_factory=dict)
    inners: dict[str, Inner] = field(default_factory=dict)
    loose: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RaisesConfigError:
    x: int = 0

    def __post_init__(self) -> None:
        if self.x:
            raise ConfigError("somewhere.else: a message of its own")


def _error(cls, data, where="params.sec") -> str:
    with pytest.raises(ConfigError) as info:
        from_dict(cls, data, where)
    return str(info.value)


# ---- a valid mapping ----------------------------------------------------------------------------------------


def test_valid_mapping_is_converted_per_annotation():
    got = from_dict(Outer, {"name": "a", "steps": 3, "flag": True, "rate": 2, "sizes": [4, 5],
                            "inner": {"n": 7}, "scales": {"d": 5}, "inners": {"k": {"n": 2}},
                            "loose": {"any": [1, "x"]}})
    assert got == Outer(name="a", steps=3, flag=True, rate=2.0, sizes=(4, 5), inner=Inner(7),
                        scales={"d": 5.0}, inners={"k": Inner(2)}, loose={"any": [1, "x"]})
    assert type(got.rate) is float and type(got.scales["d"]) is float  # int → float for float fields
    assert type(got.sizes) is tuple  # a YAML list becomes the annotated tuple
    assert type(got.inner) is Inner and type(got.inners["k"]) is Inner


def test_defaults_fill_what_is_not_given_and_none_is_an_empty_mapping():
    assert from_dict(Outer, {"name": "a"}) == Outer(name="a")
    assert from_dict(Inner, None) == Inner()  # an empty YAML section parses as None


def test_float_from_string_as_yaml_reads_exponents_without_a_dot():
    assert from_dict(Outer, {"name": "a", "rate": "2e-4"}).rate == pytest.approx(2e-4)
    assert from_dict(Outer, {"name": "a", "scales": {"d": "1e3"}}).scales == {"d": 1000.0}


# ---- unknown keys -------------------------------------------------------------------------------------------


def test_unknown_key_names_dotted_path_close_match_and_allowed_keys():
    message = _error(Outer, {"name": "a", "stpes": 3})
    allowed = "flag, inner, inners, loose, name, rate, scales, sizes, steps"
    assert message == f"params.sec.stpes: unknown key (did you mean 'steps'?); allowed keys: {allowed}"


def test_unknown_key_without_a_close_match_has_no_hint():
    message = _error(Outer, {"name": "a", "zzzzzz": 3})
    assert message.startswith("params.sec.zzzzzz: unknown key; allowed keys: ")
    assert "did you mean" not in message


def test_unknown_key_inside_a_nested_dataclass_names_the_nested_path():
    assert _error(Outer, {"name": "a", "inner": {"m": 1}}).startswith("params.sec.inner.m: unknown key")
    assert _error(Outer, {"name": "a", "inners": {"k": {"nn": 1}}}).startswith(
        "params.sec.inners.k.nn: unknown key (did you mean 'n'?)")


def test_unknown_key_of_a_real_settings_section():
    message = _error(OperatorConfig, {"sigma": 1.0, "sise": 9}, "params.operator")
    assert message.startswith("params.operator.sise: unknown key (did you mean 'size'?); allowed keys: angle, boundary, kernel_file, kind, length, origin, scale, sigma, sigma_x, sigma_y, size")


# ---- wrong types --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("steps", "3.5", "params.sec.steps: expected an integer, got '3.5'"),
        ("steps", 3.0, "params.sec.steps: expected an integer, got 3.0"),
        ("steps", True, "params.sec.steps: expected an integer, got True"),  # bool is an int in Python
        ("flag", 1, "params.sec.flag: expected true/false, got 1"),
        ("flag", "yes", "params.sec.flag: expected true/false, got 'yes'"),
        ("rate", "fast", "params.sec.rate: expected a number, got 'fast'"),
        ("rate", False, "params.sec.rate: expected a number, got False"),
        ("rate", [1.0], "params.sec.rate: expected a number, got [1.0]"),
        ("name", 3, "params.sec.name: expected a string, got 3"),
        ("sizes", "12", "params.sec.sizes: expected a list, got '12'"),
        ("sizes", 4, "params.sec.sizes: expected a list, got 4"),
        ("sizes", [1, "x"], "params.sec.sizes[1]: expected an integer, got 'x'"),
        ("inner", 3, "params.sec.inner: expected a mapping, got 3"),
        ("inner", {"n": "two"}, "params.sec.inner.n: expected an integer, got 'two'"),
        ("scales", [1.0], "params.sec.scales: expected a mapping, got [1.0]"),
        ("scales", {"d": "x"}, "params.sec.scales.d: expected a number, got 'x'"),
        ("loose", "x", "params.sec.loose: expected a mapping, got 'x'"),
        ("inners", {"k": 1}, "params.sec.inners.k: expected a mapping, got 1"),
    ],
)
def test_wrong_type_names_dotted_key_value_and_expected_type(key, value, expected):
    data = {"name": "a", key: value} if key != "name" else {"name": value}
    assert _error(Outer, data) == expected


def test_a_non_mapping_section_is_an_error():
    assert _error(Outer, [1, 2]) == "params.sec: expected a mapping, got [1, 2]"


# ---- missing keys and range checks --------------------------------------------------------------------------


def test_missing_required_key_is_named():
    assert _error(Outer, {"steps": 3}) == "params.sec.name: required key is missing"


def test_post_init_value_error_is_reported_under_the_dotted_key():
    assert _error(Inner, {"n": 0}) == "params.sec.n: must be ≥ 1, got 0"
    assert _error(Outer, {"name": "a", "inner": {"n": 0}}) == "params.sec.inner.n: must be ≥ 1, got 0"
    assert _error(Outer, {"name": "a", "inners": {"k": {"n": -1}}}) == "params.sec.inners.k.n: must be ≥ 1, got -1"
    message = _error(OperatorConfig, {"sigma": -1.0}, "params.operator")
    assert message.startswith("params.operator.sigma: must be > 0")


def test_a_config_error_from_post_init_passes_through_unchanged():
    assert _error(RaisesConfigError, {"x": 1}) == "somewhere.else: a message of its own"


def test_the_result_is_frozen():
    got = from_dict(Inner, {"n": 2})
    with pytest.raises(AttributeError):
        got.n = 3  # type: ignore[misc]


# ---- close_match_hint and check_choice ---------------------------------------------------------------------


def test_close_match_hint():
    assert close_match_hint("stpes", ["seed", "steps", "lr"]) == " (did you mean 'steps'?)"
    assert close_match_hint("zzzz", ["seed", "steps"]) == ""
    assert close_match_hint("", []) == ""
    assert close_match_hint(12, [11, 12, 13]) == " (did you mean '12'?)"  # non-strings compared as text


def test_check_choice_accepts_a_choice():
    assert check_choice("pinv", ("bicubic", "pinv"), "params.evaluate.references") is None
    assert check_choice("b", iter(["a", "b"]), "x") is None  # any iterable, consumed once


def test_check_choice_lists_the_allowed_values_with_a_hint():
    with pytest.raises(ConfigError) as info:
        check_choice("picubic", ("bicubic", "pinv"), "params.evaluate.references")
    assert str(info.value) == ("params.evaluate.references: 'picubic' is not one of: bicubic, pinv "
                               "(did you mean 'bicubic'?)")


def test_check_choice_with_what_names_it_and_the_known_values():
    with pytest.raises(ConfigError) as info:
        check_choice("affgam", iter(["mse", "affgan"]), "params.methods.x.guide", "a method in params.methods")
    assert str(info.value) == ("params.methods.x.guide: 'affgam' is not a method in params.methods "
                               "(did you mean 'affgan'?); known: mse, affgan")


def test_check_choice_without_a_close_match_has_no_hint():
    with pytest.raises(ConfigError, match=re.escape("'qqq' is not one of: a, b")) as info:
        check_choice("qqq", ["a", "b"], "k")
    assert "did you mean" not in str(info.value)


# ---- plan-time checks (issue 25): values that would crash the job later --------------------------------

def test_non_finite_numbers_are_refused_with_their_key(tiny_params):
    from affsr.params import load_params

    for section, key, value in [("train", "lr", float("inf")), ("train", "lr", float("nan"))]:
        params = {**tiny_params, section: {**tiny_params[section], key: value}}
        with pytest.raises(ConfigError, match=rf"params\.{section}\.{key}: must be a finite number"):
            load_params(params)
    method = next(iter(tiny_params["methods"]))
    params = {**tiny_params, "methods": {**tiny_params["methods"],
                                         method: {**tiny_params["methods"][method], "consistency_weight": float("nan")}}}
    with pytest.raises(ConfigError, match=rf"params\.methods\.{method}\.consistency_weight: must be a finite number"):
        load_params(params)


def test_command_line_overrides_of_ints_and_bools_are_read_as_such(tiny_params):
    """Snakemake passes `--config 'train={steps: 5}'` and `'generator={skip: false}'` values as text."""
    from affsr.params import load_params

    params = load_params({**tiny_params, "train": {**tiny_params["train"], "steps": "5"},
                          "generator": {**tiny_params.get("generator", {}), "skip": "false"}})
    assert params.train.steps == 5 and params.generator.skip is False
    with pytest.raises(ConfigError, match="expected an integer"):
        load_params({**tiny_params, "train": {**tiny_params["train"], "steps": "5.5"}})


def test_a_key_given_twice_in_a_params_file_is_refused(tmp_path):
    from affsr.params import read_yaml

    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.001\n  steps: 10\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"params.yaml: line 4: key 'lr' appears twice"):
        read_yaml(tmp_path / "params.yaml")
    (tmp_path / "ok.yaml").write_text("train:\n  lr: 0.001\nevaluate:\n  lr: 1\n")  # same key, other sections
    assert read_yaml(tmp_path / "ok.yaml")["train"]["lr"] == 0.001
