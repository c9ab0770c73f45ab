"""Tests for affsr.params (with affsr.config's dataclasses): strict params.yaml validation, studies, and the resolved run settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from affsr.config.training import CONSTRAINTS, TrainConfig
from affsr.config.study import Params, RunSettings
from affsr.errors import ConfigError
from affsr.params import load_params, resolve, resolve_dataset
from affsr.methods import available_objectives

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def _error(params: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_params(params)
    return str(info.value)


# ---- the repo's own file ---------------------------------------------------------------------------------


def test_repo_params_load():
    params = load_params(REPO_PARAMS)
    assert isinstance(params, Params)
    assert params.datasets and params.methods
    raw = yaml.safe_load(REPO_PARAMS.read_text())
    assert set(params.methods) == set(raw["methods"])
    assert params.train.steps == raw["train"]["steps"]
    for name, method in params.methods.items():
        assert method.objective in available_objectives(), name
        assert method.constraint in CONSTRAINTS, name


def test_repo_params_resolve_every_run():
    params = load_params(REPO_PARAMS)
    for dataset in params.datasets:
        for method in params.methods:
            settings = RunSettings.parse(resolve(params, dataset, method))
            assert settings.dataset == dataset and settings.method == method


def test_tiny_params_are_valid(tiny_params):
    params = load_params(tiny_params)
    assert params.generator.width == 8 and params.discriminator.widths == (8, 16)


def test_missing_params_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="params file not found") as info:
        load_params(missing)
    assert str(missing) in str(info.value)


def test_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train: {steps: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_params(path)
    assert str(path) in str(info.value)


# ---- unknown keys ------------------------------------------------------------------------------------------


def test_unknown_top_level_key(tiny_params):
    tiny_params["traim"] = {"steps": 5}
    msg = _error(tiny_params)
    assert "params.traim" in msg and "unknown key" in msg
    assert "did you mean 'train'" in msg


def test_unknown_nested_key_suggests_close_match(tiny_params):
    tiny_params["train"]["stpes"] = 100
    msg = _error(tiny_params)
    assert msg.startswith("params.train.stpes: unknown key")
    assert "did you mean 'steps'" in msg
    assert "allowed keys" in msg and "checkpoint_every" in msg


def test_unknown_key_without_close_match_lists_allowed(tiny_params):
    tiny_params["operator"]["zzzzzz"] = 1
    msg = _error(tiny_params)
    assert "params.operator.zzzzzz" in msg and "did you mean" not in msg
    assert "kind, length, origin, scale, sigma, sigma_x, sigma_y, size" in msg


def test_unknown_key_in_dataset(tiny_params):
    tiny_params["datasets"]["grass"]["n_trian"] = 3
    msg = _error(tiny_params)
    assert "params.datasets.grass.n_trian" in msg and "did you mean 'n_train'" in msg


def test_unknown_key_in_method_options_pixel(tiny_params):
    tiny_params["methods"]["mse"]["options"]["los"] = "l1"
    msg = _error(tiny_params)
    assert "params.methods.mse.options.los" in msg and "did you mean 'loss'" in msg


def test_unknown_key_in_method_options_gan(tiny_params):
    tiny_params["methods"]["affgan"]["options"]["instance_nosie"] = 0.2
    msg = _error(tiny_params)
    assert "params.methods.affgan.options.instance_nosie" in msg
    assert "did you mean 'instance_noise'" in msg


def test_unknown_key_in_method_train_override(tiny_params):
    tiny_params["methods"]["mse"]["train"] = {"stpes": 5}
    msg = _error(tiny_params)
    assert "params.methods.mse.train.stpes" in msg and "did you mean 'steps'" in msg


def test_missing_required_key(tiny_params):
    del tiny_params["methods"]["mse"]["objective"]
    msg = _error(tiny_params)
    assert "params.methods.mse.objective" in msg and "required" in msg


# ---- wrong types -------------------------------------------------------------------------------------------


def test_string_for_int(tiny_params):
    """Digits as text are an integer (Snakemake's --config passes text); anything else is not."""
    tiny_params["train"]["steps"] = "1e2"
    msg = _error(tiny_params)
    assert "params.train.steps" in msg and "expected an integer" in msg and "'1e2'" in msg


def test_bool_is_not_an_int(tiny_params):
    tiny_params["generator"]["blocks"] = True
    assert "params.generator.blocks" in _error(tiny_params)


def test_list_for_mapping(tiny_params):
    tiny_params["operator"] = [1, 2]
    msg = _error(tiny_params)
    assert "params.operator" in msg and "expected a mapping" in msg


def test_list_for_mapping_in_datasets(tiny_params):
    tiny_params["datasets"] = ["grass"]
    msg = _error(tiny_params)
    assert "params.datasets" in msg and "expected a mapping" in msg


def test_list_for_mapping_in_method_train(tiny_params):
    tiny_params["methods"]["mse"]["train"] = [{"steps": 5}]
    msg = _error(tiny_params)
    assert "params.methods.mse.train" in msg and "expected a mapping" in msg


def test_list_for_mapping_in_method_options(tiny_params):
    tiny_params["methods"]["mse"]["options"] = ["l1"]
    msg = _error(tiny_params)
    assert "params.methods.mse.options" in msg and "expected a mapping" in msg


def test_wrong_type_in_method_train_override(tiny_params):
    tiny_params["methods"]["mse"]["train"] = {"batch_size": "eight"}
    msg = _error(tiny_params)
    assert "params.methods.mse.train.batch_size" in msg and "expected an integer" in msg


def test_scalar_for_list(tiny_params):
    tiny_params["discriminator"]["widths"] = 8
    msg = _error(tiny_params)
    assert "params.discriminator.widths" in msg and "expected a list" in msg


def test_float_written_without_dot_is_accepted(tiny_params):
    tiny_params["train"]["lr"] = "2e-4"  # how YAML 1.1 reads `lr: 2e-4`
    assert load_params(tiny_params).train.lr == pytest.approx(2e-4)
    tiny_params["train"]["lr"] = "fast"
    assert "params.train.lr" in _error(tiny_params)


# ---- values ------------------------------------------------------------------------------------------------


def test_unknown_objective_lists_allowed(tiny_params):
    tiny_params["methods"]["mse"]["objective"] = "pixle"
    msg = _error(tiny_params)
    assert "params.methods.mse.objective" in msg and "'pixle'" in msg
    for name in available_objectives():
        assert name in msg


def test_unknown_constraint_lists_allowed(tiny_params):
    tiny_params["methods"]["affgan"]["constraint"] = "hard"
    msg = _error(tiny_params)
    assert "params.methods.affgan.constraint" in msg and "'hard'" in msg
    for name in CONSTRAINTS:
        assert name in msg


def test_unknown_operator_kind(tiny_params):
    tiny_params["operator"]["kind"] = "lanczos"
    msg = _error(tiny_params)
    assert "params.operator.kind" in msg and "gaussian" in msg and "box" in msg


def test_unknown_device(tiny_params):
    tiny_params["train"]["device"] = "tpu"
    assert "params.train.device" in _error(tiny_params)


def test_hr_size_not_divisible_by_scale(tiny_params):
    tiny_params["datasets"]["grass"]["hr_size"] = 18
    msg = _error(tiny_params)
    assert "params.datasets.grass.hr_size" in msg
    assert "18" in msg and "scale 4" in msg


def test_negative_steps(tiny_params):
    tiny_params["train"]["steps"] = -1
    msg = _error(tiny_params)
    assert "params.train.steps" in msg and "≥ 0" in msg


def test_zero_steps_allowed_zero_batch_not(tiny_params):
    tiny_params["train"]["steps"] = 0
    assert load_params(tiny_params).train.steps == 0
    tiny_params["train"]["batch_size"] = 0
    assert "params.train.batch_size" in _error(tiny_params)


def test_negative_steps_in_method_override(tiny_params):
    tiny_params["methods"]["mse"]["train"] = {"steps": -5}
    msg = _error(tiny_params)
    assert "params.methods.mse.train.steps" in msg


@pytest.mark.parametrize("key", ["batch_size", "log_every", "checkpoint_every"])
def test_nonpositive_counts_in_method_override(tiny_params, key):
    tiny_params["methods"]["mse"]["train"] = {key: 0}
    msg = _error(tiny_params)
    assert f"params.methods.mse.train.{key}" in msg and "> 0" in msg


def test_unknown_device_in_method_override(tiny_params):
    tiny_params["methods"]["mse"]["train"] = {"device": "gpu"}
    assert "params.methods.mse.train.device" in _error(tiny_params)


def test_bad_sizes(tiny_params):
    tiny_params["datasets"]["grass"]["n_train"] = 0
    assert "params.datasets.grass.n_train" in _error(tiny_params)


# ---- resolve / RunSettings ---------------------------------------------------------------------------------


def test_resolve_round_trips_through_parse(tiny_params):
    params = load_params(tiny_params)
    resolved = resolve(params, "grass", "affgan")
    from_dict = RunSettings.parse(resolved)
    from_json = RunSettings.parse(json.dumps(resolved))
    assert from_dict == from_json
    assert from_dict.to_dict() == resolved
    assert json.loads(json.dumps(from_dict.to_dict())) == resolved
    assert from_dict.objective == "gan" and from_dict.constraint == "projected"
    assert from_dict.discriminator.widths == (8, 16)
    assert from_dict.options == {"instance_noise": 0.1, "noise_anneal": 1.0, "d_steps": 1}


def test_method_train_overrides_win(tiny_params):
    tiny_params["methods"]["mse"]["train"] = {"steps": 7, "lr": 0.01}
    params = load_params(tiny_params)
    mse = RunSettings.parse(resolve(params, "grass", "mse"))
    gan = RunSettings.parse(resolve(params, "grass", "affgan"))
    assert (mse.train.steps, mse.train.lr) == (7, 0.01)
    assert mse.train.batch_size == tiny_params["train"]["batch_size"]  # not overridden: global value
    assert (gan.train.steps, gan.train.lr) == (20, 0.001)  # other methods keep the global section
    assert set(resolve(params, "grass", "mse")["train"]) == {f.name for f in dataclasses.fields(TrainConfig)}


def test_resolve_unknown_dataset_names_allowed(tiny_params):
    tiny_params["datasets"]["gravel"] = {"source": "skimage_gravel", "hr_size": 16}
    params = load_params(tiny_params)
    with pytest.raises(ConfigError) as info:
        resolve(params, "brick", "mse")
    msg = str(info.value)
    assert "'brick'" in msg and "grass" in msg and "gravel" in msg
    with pytest.raises(ConfigError, match="grass"):
        resolve_dataset(params, "brick")


def test_resolve_unknown_method_names_allowed(tiny_params):
    params = load_params(tiny_params)
    with pytest.raises(ConfigError) as info:
        resolve(params, "grass", "affmse")
    msg = str(info.value)
    assert "'affmse'" in msg and "mse" in msg and "affgan" in msg


def test_resolve_dataset(tiny_params):
    out = resolve_dataset(load_params(tiny_params), "grass")
    assert out["source"] == "skimage_grass" and out["hr_size"] == 16 and out["seed"] == 0
    assert out["operator"] == tiny_params["operator"]


def test_settings_parse_rejects_bad_json_and_unknown_keys(tiny_params):
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunSettings.parse("{not json")
    resolved = resolve(load_params(tiny_params), "grass", "mse")
    resolved["train"]["stpes"] = 3
    with pytest.raises(ConfigError, match=r"settings\.train\.stpes.*did you mean 'steps'"):
        RunSettings.parse(json.dumps(resolved))


# ---- the study switch, sources, resources ----------------------------------------------------------------


def test_repo_paper_study_selects_real_data_and_paper_sizes():
    raw = yaml.safe_load(REPO_PARAMS.read_text())
    demo = load_params(raw)
    paper = load_params({**raw, "study": "paper"})
    assert demo.study == "demo" and paper.study == "paper"
    assert set(demo.datasets) == set(paper.datasets) == {"grass", "faces", "natural"}
    assert {d.source for d in demo.datasets.values()} == {"skimage_grass", "skimage_faces", "skimage_photos"}
    assert {n: d.source for n, d in paper.datasets.items()} == {
        "grass": "kylberg_grass", "faces": "celeba", "natural": "imagenet"}
    # the paper's image sizes: CelebA 64 → 16, ImageNet 128 → 32; its ImageNet filter and re-split
    assert paper.datasets["faces"].hr_size == 64 and paper.datasets["natural"].hr_size == 128
    assert paper.datasets["natural"].min_bytes == 20000
    assert paper.datasets["natural"].n_val == paper.datasets["natural"].n_test == 10000
    assert paper.generator.width > demo.generator.width and paper.train.steps > demo.train.steps
    assert paper.resources["train"].gpu == 1 and demo.resources["train"].gpu == 0
    # every paper run trains its full step count; the demo scales them per data set
    assert resolve(paper, "natural", "affgan")["train"]["steps"] == paper.train.steps
    assert resolve(demo, "faces", "affgan")["train"]["steps"] < demo.train.steps


def test_paper_section_merges_key_by_key(tiny_params):
    tiny_params["paper"] = {"train": {"steps": 99}, "datasets": {"grass": {"hr_size": 32}}}
    assert load_params(tiny_params).train.steps == tiny_params["train"]["steps"]  # demo: untouched
    params = load_params({**tiny_params, "study": "paper"})
    assert params.train.steps == 99 and params.train.batch_size == tiny_params["train"]["batch_size"]
    assert params.datasets["grass"].hr_size == 32 and params.datasets["grass"].source == "skimage_grass"


def test_unknown_study_and_unknown_paper_key(tiny_params):
    assert "params.study: 'huge' is not one of: demo, paper, cpu" in _error({**tiny_params, "study": "huge"})
    msg = _error({**tiny_params, "paper": {"trian": {"steps": 3}}})
    assert "params.paper.trian" in msg and "did you mean 'train'" in msg


def test_mistake_in_paper_section_is_caught_in_demo_study(tiny_params):
    tiny_params["paper"] = {"train": {"stpes": 3}}
    msg = _error(tiny_params)
    assert "params.train.stpes" in msg and "paper study" in msg


def test_repo_cpu_study_keeps_only_the_realism_runs_in_its_own_folder():
    """`study: cpu`: its section merged over the file, nulls removing data sets and methods (grass and the
    natural photos; faces are too few to decide); two AffGAN seeds and SoftGAN with the calibrated recipe;
    outputs under studies/cpu; the demo untouched."""
    raw = yaml.safe_load(REPO_PARAMS.read_text())
    demo, cpu = load_params(raw), load_params({**raw, "study": "cpu"})
    assert demo.workdir == "" and cpu.workdir == "studies/cpu"
    assert set(cpu.datasets) == {"grass", "natural"}
    assert set(cpu.methods) == {"mse", "affmse", "affgan", "affgan_seed1", "softgan"}
    assert cpu.evaluate.c2st_steps > demo.evaluate.c2st_steps and cpu.evaluate.density == ""
    runs = [resolve(cpu, "grass", m) for m in ("affgan", "affgan_seed1")]
    assert [r["seed"] for r in runs] == [cpu.seed, cpu.seed + 1]
    for run in runs:
        assert run["train"]["ema"] > 0 and run["train"]["lr_scale"] == {"discriminator": 5.0}
        assert run["train"]["batch_size"] == 64
    assert {k: v for k, v in runs[0].items() if k not in ("seed", "method")} == \
           {k: v for k, v in runs[1].items() if k not in ("seed", "method")}  # a second seed, nothing else
    assert resolve(demo, "grass", "affgan")["train"]["ema"] == 0.0
    softgan = resolve(cpu, "natural", "softgan")  # the calibrated soft ablation, trained as AffGAN is
    assert {k: softgan["train"][k] for k in ("steps", "ema", "lr_scale", "batch_size")} == \
           {k: runs[0]["train"][k] for k in ("steps", "ema", "lr_scale", "batch_size")}
    assert softgan["consistency_weight"] == resolve(demo, "natural", "softgan")["consistency_weight"]


def test_a_null_in_a_study_section_removes_the_key(tiny_params):
    tiny_params["cpu"] = {"methods": {"affgan": None}, "workdir": "elsewhere"}
    params = load_params({**tiny_params, "study": "cpu"})
    assert set(params.methods) == {"mse"} and params.workdir == "elsewhere"
    assert set(load_params(tiny_params).methods) == {"mse", "affgan"}
    tiny_params["cpu"] = {"trian": {}}
    assert "params.cpu.trian" in _error(tiny_params)


def test_unknown_source_suggests(tiny_params):
    tiny_params["datasets"]["grass"]["source"] = "skimage_gras"
    msg = _error(tiny_params)
    assert "params.datasets.grass.source" in msg and "did you mean 'skimage_grass'" in msg and "celeba" in msg


def test_downloaded_source_needs_url_and_local_source_needs_path(tiny_params):
    tiny_params["datasets"]["grass"]["source"] = "celeba"
    assert "params.datasets.grass.download" in _error(tiny_params)
    tiny_params["datasets"]["grass"]["source"] = "imagenet"
    assert "params.datasets.grass.path" in _error(tiny_params)


@pytest.mark.parametrize("crop", [[1, 2], [-1], [0, 0, 1, 1]])
def test_bad_crop(tiny_params, crop):
    tiny_params["datasets"]["grass"]["crop"] = crop
    assert "params.datasets.grass.crop" in _error(tiny_params)


def test_steps_scale_scales_steps_but_not_data(tiny_params):
    tiny_params["datasets"]["grass"]["steps_scale"] = 0.5
    params = load_params(tiny_params)
    assert resolve(params, "grass", "mse")["train"]["steps"] == round(tiny_params["train"]["steps"] * 0.5)
    assert "steps_scale" not in resolve_dataset(params, "grass")  # changing it must not remake the data
    tiny_params["datasets"]["grass"]["steps_scale"] = 0
    assert "params.datasets.grass.steps_scale: must be > 0" in _error(tiny_params)


def test_resources_of_unknown_rule(tiny_params):
    tiny_params["resources"] = {"trian": {"gpu": 1}}
    msg = _error(tiny_params)
    assert "params.resources.trian" in msg and "train" in msg


# ---- where a bad value came from: params.yaml or --config ------------------------------------------------


def test_an_error_names_the_file_or_the_command_line(tmp_path, tiny_params):
    tiny_params["train"]["lr"] = -1
    with pytest.raises(ConfigError) as info:
        load_params(tiny_params, command_line={"train": {"lr": -1}})
    assert str(info.value).startswith("--config: params.train.lr: must be > 0")
    with pytest.raises(ConfigError) as info:
        load_params(tiny_params, command_line={"study": "demo"})
    assert str(info.value).startswith("params.yaml: params.train.lr: must be > 0")
    with pytest.raises(ConfigError) as info:  # a whole section given on the command line
        load_params(tiny_params, command_line={"train": "{lr: -1}"})
    assert str(info.value).startswith("--config: ")
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(tiny_params))
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}: params.train.lr")


def test_resolved_operator_settings_carry_only_what_differs_from_the_default(tiny_params):
    """The paper's Gaussian resolves as before other kinds existed (no rerun of a finished study); another
    kind carries its own keys."""
    assert resolve(load_params(tiny_params), "grass", "mse")["operator"] == {
        "kind": "gaussian", "sigma": 1.0, "size": 9, "scale": 4}
    tiny_params["operator"] = {"kind": "gaussian", "sigma_x": 1.5, "sigma_y": 0.5, "angle": 30.0, "scale": 4}
    resolved = resolve(load_params(tiny_params), "grass", "mse")["operator"]
    assert (resolved["sigma_x"], resolved["sigma_y"], resolved["angle"]) == (1.5, 0.5, 30.0)
    assert RunSettings.parse(resolve(load_params(tiny_params), "grass", "mse")).operator.angle == 30.0


def test_a_toy_weight_per_soft_method(tiny_params):
    """toy.methods.<name>.consistency_weight sets that soft method's toy weight; others keep the toy's."""
    from affsr.params import load_params, resolve_toy

    tiny_params["methods"]["softgan"] = {"objective": "gan", "constraint": "soft", "consistency_weight": 3.0}
    tiny_params["toy"] = {"consistency_weight": 4.0, "methods": {"softgan": {"consistency_weight": 1.5},
                                                                   "mse": {"consistency_weight": 9.0}}}
    runs = resolve_toy(load_params(tiny_params))["methods"]
    assert runs["softgan"]["consistency_weight"] == 1.5
    assert runs["mse"]["consistency_weight"] == load_params(tiny_params).methods["mse"].consistency_weight
    tiny_params["toy"]["methods"]["softgan"]["consistency_weight"] = -1.0
    with pytest.raises(ConfigError, match="params.toy.methods.softgan.consistency_weight: must be a number ≥ 0"):
        load_params(tiny_params)
