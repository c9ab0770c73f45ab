"""Tests for affsr.training.checkpoint: the file format (round trip, unreadable files), networks and guides rebuilt
from a checkpoint's own settings, and the data-vs-run check."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import affsr.training.run as train_module
from affsr.training.checkpoint import check_data_matches, load, load_guides, load_model, load_network, save
from affsr.config.study import RunSettings
from affsr.data.load import load_manifest, load_split
from affsr.errors import CheckpointError, ConfigError
from affsr.nets.sr_model import SRModel
from affsr.params import load_params, resolve
from affsr.training.run import train
from conftest import tiny_params_dict

STEPS = 4
DAE_SIGMAS = [0.5, 0.1]


def _params() -> dict:
    """The tiny params plus a two-snapshot denoiser (dae) and the method it guides (affdg)."""
    params = tiny_params_dict()
    params["train"]["steps"] = STEPS
    params["denoiser"] = {"width": 8, "depth": 2}
    params["methods"]["dae"] = {"objective": "dae", "options": {"sigma_start": DAE_SIGMAS[0],
                                                               "sigma_end": DAE_SIGMAS[1], "snapshots": 2}}
    params["methods"]["affdg"] = {"objective": "denoiser_guided", "constraint": "projected", "guide": "dae"}
    return params


def _settings(method: str) -> RunSettings:
    return RunSettings.parse(resolve(load_params(_params()), "grass", method))


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory) -> dict:
    """Tiny finished runs ({method: checkpoint path}) and the objectives as training left them."""
    out = tmp_path_factory.mktemp("checkpoint-runs")
    built: dict = {}
    original = train_module.build_objective

    def build(settings, *args, **kwargs):
        built[settings.method] = objective = original(settings, *args, **kwargs)
        return objective

    paths = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "build_objective", build)
        for method in ("mse", "dae"):
            paths[method] = out / f"{method}.pt"
            train(_settings(method), tiny_data, paths[method], out / f"{method}.csv", progress=False)
    return {"paths": paths, "objectives": built}


# ---- the file format ----------------------------------------------------------------------------------------


def test_save_load_round_trip_is_bitwise(tmp_path):
    gen = torch.Generator().manual_seed(0)
    state = {
        "networks": {"generator": {"w": torch.randn(3, 4, generator=gen), "b": torch.arange(5)}},
        "half": torch.randn(2, generator=gen).to(torch.float16),
        "channels": 3,
        "snapshots": [{"label": 0.5, "networks": {"d": {"x": torch.tensor([1.5, float("nan")])}}}],
    }
    settings = {"seed": 1, "method": "mse", "train": {"lr": 2e-4, "lr_scale": {}}, "widths": [8, 16],
                "note": "σ", "nothing": None}
    path = tmp_path / "sub" / "model.pt"
    save(path, state, settings)
    loaded, loaded_settings = load(path)
    assert loaded_settings == settings
    assert loaded.keys() == state.keys() and loaded["channels"] == 3
    for key in ("w", "b"):
        a, b = state["networks"]["generator"][key], loaded["networks"]["generator"][key]
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert loaded["half"].dtype == torch.float16 and torch.equal(loaded["half"], state["half"])
    nan = loaded["snapshots"][0]["networks"]["d"]["x"]
    assert loaded["snapshots"][0]["label"] == 0.5 and nan[0] == 1.5 and torch.isnan(nan[1])


def test_save_stores_settings_as_json_text(tmp_path):
    path = tmp_path / "model.pt"
    save(path, {}, {"b": 1, "a": [1, 2]})
    payload = torch.load(path, weights_only=True)
    assert json.loads(payload["settings_json"]) == {"a": [1, 2], "b": 1}
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temp file left beside it


def test_missing_checkpoint_is_an_error_naming_it(tmp_path):
    path = tmp_path / "runs" / "model.pt"
    with pytest.raises(CheckpointError, match=f"^{path}: checkpoint not found$"):
        load(path)


def test_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=f"^{tmp_path}: is a folder, not a checkpoint file$"):
        load(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all\n", b"PK\x03\x04truncated zip"],
                         ids=["empty", "text", "truncated"])
def test_garbage_file_is_an_error_naming_it(tmp_path, content):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"^{path}: not a readable affsr checkpoint"):
        load(path)


def test_a_torch_file_of_another_shape_is_an_error(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"generator": torch.zeros(2)}, path)  # a bare state dict, no settings
    with pytest.raises(CheckpointError, match=f"^{path}: not a readable affsr checkpoint"):
        load(path)


def test_a_checkpoint_with_pickled_objects_is_refused(tmp_path):
    # any object beyond tensors and plain containers could run code when unpickled: refused, not loaded
    import datetime

    path = tmp_path / "model.pt"
    torch.save({"state": {"when": datetime.date(2017, 4, 24)}, "settings_json": "{}"}, path)
    with pytest.raises(CheckpointError, match=f"^{path}: not a readable affsr checkpoint"):
        load(path)


# ---- networks rebuilt from the checkpoint ---------------------------------------------------------------------


def test_load_model_rebuilds_the_trained_model(runs, tiny_data):
    model, settings = load_model(runs["paths"]["mse"])
    assert isinstance(model, SRModel) and isinstance(settings, RunSettings)
    assert settings == _settings("mse")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    trained = runs["objectives"]["mse"].networks["generator"]
    lr, _ = load_split(tiny_data, "test")
    with torch.no_grad():
        expected = trained.eval()(lr)
        got = model(lr)
    assert torch.equal(got, expected)
    # and the training moved the weights: an untrained model gives other outputs
    from affsr.training.build import build_model

    torch.manual_seed(settings.seed)
    with torch.no_grad():
        untrained = build_model(settings, lr.shape[1]).eval()(lr)
    assert not torch.allclose(untrained, expected)


def test_load_network_of_a_name_the_run_lacks_is_an_error(runs):
    path = runs["paths"]["mse"]
    with pytest.raises(CheckpointError, match=f"^{path}: settings or weights do not fit a usable 'discriminator'"):
        load_network(path, "discriminator")


def test_load_network_of_weights_that_do_not_fit_is_an_error(runs, tmp_path):
    state, stored = load(runs["paths"]["mse"])
    stored = copy.deepcopy(stored)
    stored["generator"]["width"] = 16  # the settings now describe another network
    path = tmp_path / "model.pt"
    save(path, state, stored)
    with pytest.raises(CheckpointError, match=f"^{path}: settings or weights do not fit a usable 'generator'"):
        load_model(path)


def test_load_network_of_settings_that_are_not_a_runs_is_an_error(runs, tmp_path):
    state, stored = load(runs["paths"]["mse"])
    path = tmp_path / "model.pt"
    save(path, state, {**stored, "stpes": 3})
    with pytest.raises(CheckpointError, match=f"^{path}: its settings are not an affsr run's"):
        load_model(path)


# ---- guides ------------------------------------------------------------------------------------------------------


def test_load_guides_are_the_frozen_snapshots_in_order(runs):
    path = runs["paths"]["dae"]
    state, _ = load(path)
    snapshots = state["snapshots"]
    assert [s["label"] for s in snapshots] == pytest.approx(DAE_SIGMAS)  # what the dae run recorded
    guides = load_guides(path, _settings("affdg"), channels=1)
    assert [g.label for g in guides] == [s["label"] for s in snapshots]
    for guide, snap in zip(guides, snapshots):
        assert not guide.network.training
        assert not any(p.requires_grad for p in guide.network.parameters())
        weights = guide.network.state_dict()
        assert weights.keys() == snap["networks"]["denoiser"].keys()
        assert all(torch.equal(weights[k], v) for k, v in snap["networks"]["denoiser"].items())
    # the snapshots differ (the first was taken half-way), so order is observable
    first, last = (s["networks"]["denoiser"] for s in snapshots)
    assert not all(torch.equal(first[k], last[k]) for k in first)


def test_load_guides_refuses_a_run_of_the_wrong_objective(runs):
    path = runs["paths"]["mse"]
    with pytest.raises(CheckpointError) as info:
        load_guides(path, _settings("affdg"), channels=1)
    assert str(info.value) == (f"{path}: a 'pixel' run cannot guide objective 'denoiser_guided', "
                               "which needs a 'dae' run")


def test_load_guides_refuses_a_guide_for_an_unguided_objective(runs):
    path = runs["paths"]["dae"]
    with pytest.raises(CheckpointError, match=f"^{path}: a 'dae' run cannot guide objective 'pixel'"):
        load_guides(path, _settings("mse"), channels=1)


def test_load_guides_refuses_other_channels(runs):
    path = runs["paths"]["dae"]
    with pytest.raises(CheckpointError, match=f"^{path}: trained on 1-channel images, but this run's data have 3"):
        load_guides(path, _settings("affdg"), channels=3)


def test_load_guides_refuses_a_run_without_snapshots(runs, tmp_path):
    state, stored = load(runs["paths"]["dae"])
    path = tmp_path / "dae.pt"
    save(path, {**state, "snapshots": []}, stored)
    with pytest.raises(CheckpointError, match=f"^{path}: holds no snapshots"):
        load_guides(path, _settings("affdg"), channels=1)


# ---- data vs run --------------------------------------------------------------------------------------------------


def test_check_data_matches_accepts_the_runs_data(tiny_data):
    manifest = load_manifest(tiny_data)
    assert manifest["dataset"] == "grass"
    check_data_matches(_settings("mse"), tiny_data, manifest)
    legacy = {k: v for k, v in manifest.items() if k != "dataset"}  # data made without --dataset
    check_data_matches(_settings("mse"), tiny_data, legacy)


def test_check_data_matches_refuses_another_data_set(tiny_data):
    manifest = {**load_manifest(tiny_data), "dataset": "faces"}
    with pytest.raises(ConfigError) as info:
        check_data_matches(_settings("mse"), tiny_data, manifest, what="the checkpoint")
    message = str(info.value)
    assert message.startswith(f"{tiny_data}: holds data set 'faces', but the checkpoint is for data set 'grass'")
    assert "--data data/grass" in message


@pytest.mark.parametrize("operator", [
    {"name": "box", "scale": 4, "kernel_size": 4, "origin": 0},
    {"name": "gaussian", "scale": 4, "kernel_size": 9, "origin": 4, "sigma": 2.0},
    None,
])
def test_check_data_matches_refuses_another_operator(tiny_data, operator):
    manifest = {**load_manifest(tiny_data), "operator": operator}
    with pytest.raises(ConfigError, match=f"^{tiny_data}/manifest.json: data were made with operator "):
        check_data_matches(_settings("mse"), tiny_data, manifest)



def test_the_digest_covers_every_tensor_byte_and_the_settings(tmp_path):
    from affsr.training.checkpoint import digest

    state = {"networks": {"g": {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3, dtype=torch.bfloat16)}},
             "step": 7, "rows": [{"loss": 0.5}]}
    base = digest(state, "{}")
    assert len(base) == 64 and digest(copy.deepcopy(state), "{}") == base
    changed = copy.deepcopy(state)
    changed["networks"]["g"]["b"][1] = 1.0  # one bf16 value
    reshaped = copy.deepcopy(state)
    reshaped["networks"]["g"]["w"] = reshaped["networks"]["g"]["w"].reshape(3, 2)  # same bytes, other shape
    assert len({base, digest(changed, "{}"), digest(reshaped, "{}"), digest(state, '{"seed": 1}'),
                digest({**state, "step": 8}, "{}")}) == 5
    save(tmp_path / "c.pt", state, {})
    assert json.dumps(load(tmp_path / "c.pt")[1]) == "{}"


def test_a_checkpoint_without_a_digest_still_loads(tmp_path):
    """Checkpoints saved before digests existed (state + settings only) load unverified."""
    path = tmp_path / "old.pt"
    torch.save({"state": {"step": torch.tensor(3)}, "settings_json": "{}"}, path)
    state, settings = load(path)
    assert int(state["step"]) == 3 and settings == {}
