"""Plan-time checks (issue 25): every value whose consequence no job can run with is refused when params
are loaded — by ``snakemake -n`` and by every ``affsr`` verb reading params.yaml — in one line naming the
key, the limit and the fix: counts and seeds out of range, A's kernel larger than an HR image, sizes an
embedded source cannot give, and jobs whose arrays alone exceed their ``resources: mem_mb``. Also:
``--config`` values of every type, as Snakemake passes them (text), and the repo's studies passing."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from affsr.cli import main
from affsr.config.limits import MAX_COUNT, Term, check_memory
from affsr.errors import ConfigError
from affsr.params import load_params, read_yaml, resolve, resolve_toy

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _error(params: dict, command_line: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_params(params, command_line=command_line)
    message = str(info.value)
    assert "\n" not in message
    return message


def _set(params: dict, path: str, value) -> dict:
    """A copy of ``params`` with the value at dotted ``path`` replaced (sections made where missing)."""
    *parents, last = path.split(".")
    params = copy.deepcopy(params)
    node = params
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return params


# ---- counts and seeds: integers in range for what consumes them ------------------------------------------


@pytest.mark.parametrize("path", ["train.steps", "train.batch_size", "datasets.grass.n_train", "datasets.grass.n_test",
                                  "evaluate.c2st_steps", "toy.kde_samples", "generator.width", "density.components",
                                  "resources.train.threads", "methods.mse.train.steps"])
def test_a_count_above_the_limit_is_refused_with_its_key(tiny_params, path):
    message = _error(_set(tiny_params, path, MAX_COUNT + 1))
    assert message.startswith(f"params.{path}: must be at most 1,000,000,000"), message
    assert load_params(_set(tiny_params, "train.steps", MAX_COUNT)).train.steps == MAX_COUNT  # the limit itself


@pytest.mark.parametrize("value, expected", [
    (10**23, "params.train.steps: 100000000000000000000000 is out of range: an integer setting must lie within ±2^63"),
    (1e23, "params.train.steps: expected an integer, got 1e+23"),  # a YAML float for an int key
    ("1e23", "params.train.steps: expected an integer, got '1e23'"),  # PyYAML's reading of `steps: 1e23`
])
def test_steps_1e23_is_refused_in_every_form_it_arrives_in(tiny_params, value, expected):
    assert _error(_set(tiny_params, "train.steps", value)) == expected


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_the_seed_lies_in_32_bits(tiny_params, seed):
    assert _error({**tiny_params, "seed": seed}).startswith("params.seed: must be in [0, 2^32)")


def test_a_seed_offset_may_not_make_a_seed_negative(tiny_params):
    message = _error(_set(tiny_params, "methods.mse.seed_offset", -1))
    assert message.startswith("params.methods.mse.seed_offset: seed 0 + seed_offset -1 must lie in [0, 2^32)")


def test_the_density_models_kernels_are_odd(tiny_params):
    assert _error(_set(tiny_params, "density.kernel", 4)).startswith("params.density.kernel: must be odd")
    assert _error(_set(tiny_params, "density.first_kernel", 6)).startswith("params.density.first_kernel: must be odd")


@pytest.mark.parametrize("value", [float("inf"), float("nan"), ".inf", "-.Inf", ".NaN", "inf"])
def test_an_infinite_sigma_is_refused(tiny_params, value):
    """`sigma: .inf` made data with a flat blur and wrote `Infinity` into the manifest (text: as --config
    passes it)."""
    message = _error(_set(tiny_params, "operator.sigma", value))
    assert message.startswith("params.operator.sigma: must be a finite number"), message


# ---- A's kernel against the HR size ----------------------------------------------------------------------


def test_an_hr_size_smaller_than_the_kernel_is_refused(tiny_params):
    tiny_params["datasets"]["gravel"] = {**tiny_params["datasets"]["grass"], "source": "skimage_gravel"}
    message = _error(_set(tiny_params, "datasets.grass.hr_size", 4))
    assert message.startswith("params.datasets.grass.hr_size: 4 is smaller than A's 9×9 kernel (operator: kind "
                              "gaussian, sigma 1.0, size 9, scale 4)"), message
    assert "set hr_size ≥ 12" in message


@pytest.mark.parametrize("size", [999, MAX_COUNT])
def test_a_kernel_larger_than_every_hr_image_names_operator_size(tiny_params, size):
    """Built with the size capped, so a huge kernel costs nothing to check."""
    message = _error(_set(tiny_params, "operator.size", size))
    assert message.startswith(f"params.operator.size: {size} makes A's kernel (operator: kind gaussian"), message
    assert "larger than every data set's hr_size (largest 16)" in message


def test_a_motion_kernel_longer_than_the_hr_image_names_its_length(tiny_params):
    tiny_params["operator"] = {"kind": "motion", "length": 1e6, "angle": 45.0, "scale": 4}
    assert _error(tiny_params).startswith("params.operator.length: 1000000.0 makes A's kernel (operator: kind motion")


def test_a_size_the_kind_does_not_use_is_not_refused(tiny_params):
    tiny_params["operator"] = {"kind": "box", "size": 999, "scale": 4}  # box: an s × s kernel, size unused
    assert load_params(tiny_params).operator.size == 999


# ---- what an embedded source holds --------------------------------------------------------------------------


def test_an_hr_size_no_band_of_the_source_holds_is_refused(tiny_params):
    """grass is 512 rows: its val and test bands are 64 rows each."""
    message = _error(_set(tiny_params, "datasets.grass.hr_size", 128))
    assert message.startswith("params.datasets.grass.hr_size: 128 does not fit source 'skimage_grass'"), message
    assert "the smallest 64 px; choose hr_size ≤ 64" in message
    assert load_params(_set(tiny_params, "datasets.grass.hr_size", 64))


def test_a_crop_outside_the_embedded_faces_is_refused(tiny_params):
    tiny_params["datasets"]["faces"] = {"source": "skimage_faces", "crop": [30], "hr_size": 24}
    message = _error(tiny_params)
    assert message.startswith("params.datasets.faces.crop: crop (30,) (top=-3, left=-3, size=30) does not fit an "
                              "image of 25×25 pixels"), message


def test_counts_of_an_embedded_collection_are_caps_at_what_it_holds(tiny_params):
    """The 100 embedded faces split 74 / 13 / 13: larger counts take them all and cost no more memory."""
    tiny_params["datasets"]["faces"] = {"source": "skimage_faces", "crop": [24], "hr_size": 24,
                                        "n_train": MAX_COUNT, "n_val": MAX_COUNT, "n_test": MAX_COUNT}
    tiny_params["resources"] = {"prepare": {"mem_mb": 1}, "train": {"mem_mb": 1}, "evaluate": {"mem_mb": 1}}
    tiny_params["datasets"]["grass"].update(n_train=8, n_val=8, n_test=8)
    tiny_params["train"]["batch_size"] = 1
    assert load_params(tiny_params).datasets["faces"].n_train == MAX_COUNT


# ---- memory a job needs at least, against its resources.mem_mb ------------------------------------------


def test_a_batch_no_cpu_job_can_hold_is_refused(tiny_params):
    message = _error(_set(tiny_params, "train.batch_size", 100_000_000))
    assert message.startswith("params.train.batch_size: 100,000,000 images per batch of 1×16×16 make a train job "
                              "(mse on grass) need at least"), message
    assert "more than resources.train.mem_mb = 2,000 MB; at most" in message
    assert "lower train.batch_size or raise resources.train.mem_mb" in message


def test_a_methods_own_batch_size_is_named_as_its_key(tiny_params):
    message = _error(_set(tiny_params, "methods.affgan.train", {"batch_size": 100_000_000}))
    assert message.startswith("params.methods.affgan.train.batch_size: 100,000,000 images per batch"), message


def test_a_gpu_jobs_batch_is_set_against_the_largest_gpu(tiny_params):
    tiny_params["resources"] = {"train": {"mem_mb": 2000, "gpu": 1}}
    assert load_params(_set(tiny_params, "train.batch_size", 10_000_000))  # 107 GB: a GPU job's, not mem_mb's
    message = _error(_set(tiny_params, "train.batch_size", 100_000_000))
    assert "make a train job (mse on grass) on its GPU need at least 1,074,219 MB" in message
    assert message.endswith("more than the 300,000 MB no single GPU exceeds; at most 27,927,272 fit: lower "
                            "train.batch_size"), message


def test_a_zero_step_run_holds_no_batch(tiny_params):
    tiny_params["methods"]["affinit"] = {"objective": "pixel", "train": {"steps": 0, "batch_size": MAX_COUNT}}
    assert load_params(tiny_params).methods["affinit"].train["batch_size"] == MAX_COUNT


def test_too_many_test_patches_for_prepare_are_refused(tiny_params):
    message = _error(_set(tiny_params, "datasets.grass.n_test", 100_000_000))
    assert message.startswith("params.datasets.grass.n_test: 100,000,000 test images of 1×16×16 make a prepare job "
                              "(grass) need at least 30,518 MB, more than resources.prepare.mem_mb = 2,000 MB; at "
                              "most 6,553,528 fit"), message


def test_the_training_split_counts_in_the_train_job_and_the_test_split_in_evaluate(tiny_params):
    tiny_params["resources"] = {"prepare": {"mem_mb": 100_000}, "train": {"mem_mb": 100},
                                "evaluate": {"mem_mb": 100}}
    message = _error(_set(tiny_params, "datasets.grass.n_train", 400_000))
    assert message.startswith("params.datasets.grass.n_train: 400,000 train images of 1×16×16 make a train job "
                              "(mse on grass) need at least"), message
    message = _error(_set(tiny_params, "datasets.grass.n_test", 50_000))
    assert message.startswith("params.datasets.grass.n_test: 50,000 test images of 1×16×16 (each with its output, "
                              "as floats) make an evaluate job (grass) need at least"), message


def test_mirrored_training_images_count_twice(tiny_params):
    tiny_params["resources"] = {"prepare": {"mem_mb": 1}}
    tiny_params["datasets"]["grass"].update(n_train=2000, n_val=1, n_test=1)  # 2000 × 320 B = 0.6 MB: fits 1 MB
    load_params(tiny_params)
    tiny_params["datasets"]["grass"]["mirror_train"] = True
    assert "train images of 1×16×16 (and their mirrors)" in _error(tiny_params)


def test_check_memory_says_when_the_rest_alone_is_too_much():
    terms = [Term("params.a", 10, 2**20, "things"), Term("params.b", 1, 2**20, "other things")]
    with pytest.raises(ConfigError, match=r"^params.a: 10 things make a job need at least 11 MB, more than "
                                          r"resources.x.mem_mb = 5 MB; at most 4 fit: lower a or raise"):
        check_memory(terms, 5, "a job", "resources.x.mem_mb")
    with pytest.raises(ConfigError, match=r"the rest of the job alone needs 1 MB: raise resources.x.mem_mb$"):
        check_memory(terms, 1, "a job", "resources.x.mem_mb")


# ---- --config: values of every type, as Snakemake passes them -------------------------------------------


def test_command_line_text_is_read_as_the_settings_types(tiny_params):
    """Snakemake's --config reads nested values as text: ints, floats, bools, `str | bool` and nulls."""
    command_line = {"train": {"steps": "5", "lr": "1e-3", "compile": "false", "channels_last": "true"},
                    "methods": {"mse": {"train": {"steps": "7"}, "generator": {"noise": "2"}},
                                "affgan": {"options": {"d_steps": "3", "instance_noise": "0.2"}}},
                    "evaluate": {"density": "null"}}
    merged = _merge(tiny_params, command_line)
    params = load_params(merged, command_line=command_line)
    assert params.train.compile is False and params.train.channels_last is True and params.train.lr == 1e-3
    mse = resolve(params, "grass", "mse")
    assert mse["train"]["steps"] == 7 and mse["generator"]["noise"] == 2 and mse["train"]["lr"] == 1e-3
    affgan = resolve(params, "grass", "affgan")
    assert affgan["options"] == {"instance_noise": 0.2, "noise_anneal": 1.0, "d_steps": 3}
    assert json.loads(json.dumps(resolve_toy(params)))  # the toy's runs resolve too


def test_a_command_line_null_removes_the_key_or_nulls_it_in_a_study_section(tiny_params):
    tiny_params["datasets"]["gravel"] = {**tiny_params["datasets"]["grass"], "source": "skimage_gravel"}
    tiny_params["paper"] = {"datasets": {"gravel": {"n_test": 4}}}
    command_line = {"datasets": {"gravel": "null"}, "paper": {"datasets": {"gravel": "~"}}}
    params = load_params(_merge(tiny_params, command_line), command_line=command_line)
    assert list(params.datasets) == ["grass"]
    paper = load_params({**_merge(tiny_params, command_line), "study": "paper"}, command_line=command_line)
    assert list(paper.datasets) == ["grass"]


def test_an_error_in_a_command_line_value_names_the_command_line(tiny_params):
    command_line = {"datasets": {"grass": {"hr_size": "4"}}}
    message = _error(_merge(tiny_params, command_line), command_line)
    assert message.startswith("--config: params.datasets.grass.hr_size: 4 is smaller than A's 9×9 kernel")


def _merge(base: dict, override: dict) -> dict:
    """Snakemake's merge of --config over the config file (mappings key by key)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# ---- the repo's studies, the CLI and Snakemake's plan ---------------------------------------------------


@pytest.mark.parametrize("study", ["demo", "paper", "cpu", "box", "smoke"])
def test_every_study_of_the_repo_passes_the_checks(study):
    params = load_params({**read_yaml(REPO / "params.yaml"), "study": study}, command_line={})
    assert params.study == study


@pytest.mark.parametrize("path, value, key", [
    ("train.batch_size", 100_000_000, "params.train.batch_size"),
    ("datasets.grass.hr_size", 4, "params.datasets.grass.hr_size"),
    ("operator.size", 999, "params.operator.size"),
    ("datasets.grass.n_test", 100_000_000, "params.datasets.grass.n_test"),
    ("operator.sigma", float("inf"), "params.operator.sigma"),
    ("train.steps", 10**23, "params.train.steps"),
])
def test_the_cli_refuses_in_one_line_with_exit_2(tmp_path, capsys, tiny_params, path, value, key):
    file = tmp_path / "params.yaml"
    file.write_text(yaml.safe_dump(_set(tiny_params, path, value)))
    code = main(["prepare", "--dataset", "grass", "--params", str(file), "--out", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()] and err.startswith(f"affsr: error: {file}: {key}: "), err
    assert not (tmp_path / "data").exists()


def _plan(folder: Path, config: list[str]) -> subprocess.CompletedProcess:
    """`snakemake -n` of the repo's workflow and params.yaml (copied to ``folder``) with these --config values."""
    (folder / "params.yaml").write_text((REPO / "params.yaml").read_text())
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(BIN / "snakemake"), "--snakefile", str(REPO / "workflow" / "Snakefile"), "-n",
                           "--cores", "1", "--config", *config], cwd=folder, capture_output=True, text=True,
                          env=env, timeout=300, check=False)


@pytest.mark.parametrize("config, message", [
    (["train={batch_size: 100000000}"], "--config: params.train.batch_size: 100,000,000 images per batch"),
    (["train={steps: 1e23}"], "--config: params.train.steps: expected an integer, got '1e23'"),
    (["operator={size: 999}"], "--config: params.operator.size: 999 makes A's kernel"),
    (["cpu={datasets: {grass: {n_test: 100000000}}}", "study=cpu"],
     "--config: params.datasets.grass.n_test: 100,000,000"),
    (["seed=-1"], "--config: params.seed: must be in [0, 2^32)"),
    (["operator={sigma: .inf}"], "--config: params.operator.sigma: must be a finite number, got inf"),
], ids=["batch", "steps 1e23", "kernel", "n_test in the cpu study", "seed", "sigma .inf"])
def test_snakemake_refuses_at_plan_time(tmp_path, config, message):
    """`snakemake -n` stops before any job with the key named (the settings are parsed in common.smk)."""
    done = _plan(tmp_path, config)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and message in output and "Traceback" not in output, output[-2000:]
    assert "Job stats" not in output  # no plan was made


def test_snakemake_plans_with_command_line_values_of_every_type(tmp_path):
    """ints, floats, bools, `str | bool`, lists, a method's own overrides and a null, as Snakemake passes
    them (text inside mappings): the plan is made, without the data set the null removed."""
    config = ["seed=3", "train={steps: 5, lr: 1e-3, compile: false, channels_last: true}",
              "methods={mse: {train: {steps: 7}}, affgan_z: {generator: {noise: 2}}, affgan: {options: {d_steps: 2}}}",
              "discriminator={widths: [8, 16]}", "datasets={faces: null}", "evaluate={density: null}"]
    done = _plan(tmp_path, config)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    assert "data/grass/manifest.json" in output and "data/faces/" not in output
