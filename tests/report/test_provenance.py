"""Tests for affsr.report.provenance: the effective params (plain data, YAML round trip) and the files the report
shows (params.yaml, versions.csv)."""

from __future__ import annotations

import platform
from importlib import metadata

import pandas as pd
import yaml

from affsr.config.study import Params
from affsr.params import load_params
from affsr.config.parse import from_dict
from affsr.report.provenance import VERSIONED, effective_params, write_provenance
from conftest import REPO_PARAMS

PLAIN = (dict, list, str, int, float, bool, type(None))


def _not_plain(value, where="params") -> list[str]:
    """Dotted paths of every value (or key) that is not plain YAML data (tuples, dataclasses, …)."""
    if isinstance(value, dict):
        bad = [f"{where}.{k!r} (key)" for k in value if not isinstance(k, str)]
        return bad + [p for k, v in value.items() for p in _not_plain(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _not_plain(v, f"{where}[{i}]")]
    return [] if isinstance(value, PLAIN) else [f"{where} ({type(value).__name__})"]


def test_the_plain_data_check_finds_tuples_and_other_keys():
    assert _not_plain({"a": [1, {"b": (1, 2)}], 3: "x"}) == ["params.3 (key)", "params.a[1].b (tuple)"]


def test_effective_params_are_plain_data_with_lists_for_tuples():
    params = load_params(REPO_PARAMS)
    assert isinstance(params.evaluate.references, tuple)  # the input really has tuples
    effective = effective_params(params)
    assert _not_plain(effective) == []
    assert effective["evaluate"]["references"] == list(params.evaluate.references)
    assert effective["discriminator"]["widths"] == list(params.discriminator.widths)
    assert {k: effective["operator"][k] for k in ("kind", "sigma", "size", "scale")} == {
        "kind": params.operator.kind, "sigma": params.operator.sigma, "size": params.operator.size,
        "scale": params.operator.scale}
    assert _not_plain(effective["operator"]) == []
    assert set(effective["methods"]) == set(params.methods)


def test_effective_params_round_trip_through_yaml_and_parse_back_to_the_same_params():
    params = load_params(REPO_PARAMS)
    effective = effective_params(params)
    assert yaml.safe_load(yaml.safe_dump(effective, sort_keys=False, allow_unicode=True)) == effective
    # they are the params, not a lossy summary: read back, they give the same validated Params
    assert from_dict(Params, effective) == params
    assert load_params(effective) == params


def test_effective_params_of_a_chosen_study(tiny_params):
    tiny_params["paper"] = {"train": {"steps": 7}}
    tiny_params["study"] = "paper"
    effective = effective_params(load_params(tiny_params))
    assert effective["train"]["steps"] == 7  # the study section applied


def test_write_provenance_writes_params_yaml_equal_to_the_settings(tmp_path, tiny_params):
    settings = effective_params(load_params(tiny_params))
    out = tmp_path / "results" / "provenance"  # created if missing
    write_provenance(out, settings)
    text = (out / "params.yaml").read_text(encoding="utf-8")
    assert text.startswith("# effective parameters")
    assert yaml.safe_load(text) == settings
    assert list(yaml.safe_load(text)) == list(settings)  # keys in the given order, not sorted


def test_write_provenance_keeps_non_ascii_text(tmp_path):
    settings = {"note": "σ = 1 HR px", "nested": {"b": [1, 2.5, True], "a": None}}
    write_provenance(tmp_path, settings)
    text = (tmp_path / "params.yaml").read_text(encoding="utf-8")
    assert "σ = 1 HR px" in text  # readable, not an escape sequence
    assert yaml.safe_load(text) == settings


def test_write_provenance_writes_versions_csv(tmp_path):
    write_provenance(tmp_path, {"seed": 0})
    versions = pd.read_csv(tmp_path / "versions.csv", dtype=str)
    assert list(versions.columns) == ["software", "version"]
    table = dict(zip(versions.software, versions.version))
    assert table["python"] == platform.python_version()
    assert table["torch"] == metadata.version("torch")
    assert table["numpy"] == metadata.version("numpy")
    assert set(VERSIONED) | {"python", "platform"} == set(table)
    assert len(versions) == len(VERSIONED) + 2  # one row each
    assert all(isinstance(v, str) and v for v in table.values())
