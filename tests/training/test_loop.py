"""Tests for affsr.training: the shared loop, its outputs, resuming, and its errors (tiny CPU runs)."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import affsr.training.run as train_module
from affsr.training import checkpoint
from affsr.training.build import build_objective
from affsr.training.accelerate import pick_device
from affsr.training.checkpoint import load_model
from affsr.config.study import STUDY_SECTIONS, RunSettings
from affsr.config.training import MethodConfig
from affsr.data.load import load_split
from affsr.data.prepare import prepare
from affsr.errors import CheckpointError, ConfigError, TrainingError
from affsr.methods.base import Phase
from affsr.params import load_params, resolve
from affsr.training.run import train
from conftest import REPO_PARAMS, tiny_params_dict, operator_of


def _run(settings, data_dir, out_dir, resume=True):
    """Train into ``out_dir``; returns (log DataFrame, checkpoint path, log path)."""
    ckpt, log = out_dir / "model.pt", out_dir / "log.csv"
    frame = train(settings, data_dir, ckpt, log, resume_dir=out_dir / ".resume" if resume else None,
                  progress=False)
    return frame, ckpt, log


def _weights(path) -> dict[str, dict[str, torch.Tensor]]:
    state, _ = checkpoint.load(path)
    return state["networks"]


@pytest.fixture
def wrap_phases(monkeypatch):
    """``wrap_phases(wrapper)``: every objective ``train`` builds gets each phase loss replaced by
    ``wrapper(phase, objective)`` (a callable (batch, progress) → loss). Returns the list of objectives built."""
    built = []

    def install(wrapper=None):
        original = train_module.build_objective

        def build(*args, **kwargs):
            objective = original(*args, **kwargs)
            if wrapper is not None:
                objective.phases = [Phase(p.name, p.network, wrapper(p, objective)) for p in objective.phases]
            built.append(objective)
            return objective

        monkeypatch.setattr(train_module, "build_objective", build)
        return built

    return install


# ---- a normal run ---------------------------------------------------------------------------------------


def test_mse_run_writes_checkpoint_and_log_and_learns(tmp_path, tiny_data, make_settings, wrap_phases):
    built = wrap_phases()
    settings = make_settings("mse", steps=40, log_every=5)
    frame, ckpt, log_path = _run(settings, tiny_data, tmp_path)
    assert ckpt.is_file() and log_path.is_file()
    log = pd.read_csv(log_path)
    assert list(log.columns) == ["step", "loss_pixel", "seconds"]
    assert log["step"].tolist() == list(range(5, 41, 5))
    assert log["loss_pixel"].notna().all() and (log["seconds"] >= 0).all()
    pd.testing.assert_frame_equal(log, frame.reset_index(drop=True), check_dtype=False)
    start, end = log["loss_pixel"].iloc[:2].mean(), log["loss_pixel"].iloc[-2:].mean()
    assert end < start, f"loss did not go down: {start} → {end}"
    assert len(built) == 1

    # load_model rebuilds the same model from the checkpoint alone and reproduces the trained outputs.
    model, loaded = load_model(ckpt)
    assert loaded == settings
    assert not model.training and model.constraint == "none"
    trained = built[0].networks["generator"].eval()
    lr, _ = load_split(tiny_data, "test")
    with torch.no_grad():
        assert torch.equal(model(lr), trained(lr))
    _, stored = checkpoint.load(ckpt)
    assert {k: stored["data"][k] for k in ("source", "seed")} == {"source": "skimage_grass", "seed": 0}
    assert len(stored["data"]["manifest_sha256"]) == 64  # resume identity: the data it was trained on


def test_two_runs_on_one_machine_are_bitwise_identical(tmp_path, tiny_data, make_settings):
    """Same settings, same machine: the same weights to the last bit and the same losses (the README's
    reproducibility claim; across machines CPU kernels differ, and nothing here claims more)."""
    settings = make_settings("affgan", steps=12, log_every=3)
    first, ckpt_a, _ = _run(settings, tiny_data, tmp_path / "a", resume=False)
    second, ckpt_b, _ = _run(settings, tiny_data, tmp_path / "b", resume=False)
    a, b = _weights(ckpt_a), _weights(ckpt_b)
    assert a.keys() == b.keys()
    for net in a:
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
    loss_columns = [c for c in first.columns if c.startswith("loss_")]
    assert first[loss_columns].equals(second[loss_columns])


def test_gan_run_logs_both_losses_and_instance_noise(tmp_path, tiny_data, make_settings):
    settings = make_settings("affgan", steps=20, log_every=5)
    frame, ckpt, log_path = _run(settings, tiny_data, tmp_path, resume=False)
    log = pd.read_csv(log_path)
    assert set(log.columns) == {"step", "loss_discriminator", "loss_generator", "instance_noise", "seconds"}
    assert log["step"].tolist() == [5, 10, 15, 20]
    # σ(t) at the last step of each logged block: 0.1 · (1 − (step − 1)/steps)
    assert log["instance_noise"].tolist() == pytest.approx([0.1 * (1 - (s - 1) / 20) for s in log["step"]])
    assert log["instance_noise"].is_monotonic_decreasing
    assert set(_weights(ckpt)) == {"generator", "discriminator"}
    model, _ = load_model(ckpt)
    lr, _ = load_split(tiny_data, "test")
    with torch.no_grad():
        sr = model(lr)
    assert model.constraint == "projected"
    assert (torch.linalg.norm(model.op(sr) - lr) / torch.linalg.norm(lr)).item() < 1e-5


def test_zero_steps_saves_the_untrained_model(tmp_path, tiny_data, make_settings):
    settings = make_settings("mse", steps=0)
    frame, ckpt, log_path = _run(settings, tiny_data, tmp_path)
    assert ckpt.is_file() and log_path.is_file()
    assert len(frame) == 0 and len(pd.read_csv(log_path)) == 0
    model, _ = load_model(ckpt)
    fresh = build_objective(settings, 1).context.model.eval()
    lr, _ = load_split(tiny_data, "test")
    with torch.no_grad():
        assert torch.equal(model(lr), fresh(lr))


# ---- resuming -------------------------------------------------------------------------------------------


class Interrupted(RuntimeError):
    """A simulated kill: any exception out of a loss (not affsr's own SIGTERM path, see test_preemption)."""


# Every method of params.yaml (every study: the cpu tier adds its own), with its objective, constraint,
# options, guide, split, generator and loop overrides, on the tiny data and networks: a new method or
# objective gets these tests without a line here. Each run: RESUME_STEPS steps, a resume state every
# RESUME_EVERY, a log row every LOG_EVERY (not a divisor: the state must carry the partial loss sums).
RESUME_STEPS, RESUME_EVERY, LOG_EVERY = 8, 4, 3
CRASH_STEP = 7  # the simulated kill hits the last phase of this step; the last saved state is RESUME_EVERY
LOOP_KEYS = ("steps", "batch_size", "log_every", "checkpoint_every", "device")  # set by the tests, not the method


def _repo_methods() -> dict[str, MethodConfig]:
    """name → MethodConfig of every method in the repo's params.yaml, read through the params loader;
    a method of a study section (``cpu:``) that the demo lacks comes with that study's settings."""
    raw = yaml.safe_load(REPO_PARAMS.read_text())
    methods = dict(load_params(REPO_PARAMS).methods)
    for study in STUDY_SECTIONS:
        if raw.get(study):
            for name, method in load_params({**raw, "study": study}).methods.items():
                methods.setdefault(name, method)
    return methods


def _zero_steps(method: MethodConfig) -> bool:
    return method.train.get("steps", 1) == 0  # affinit: the untrained network, by design


REPO_METHODS = _repo_methods()
TRAINED_METHODS = [name for name, m in REPO_METHODS.items() if not _zero_steps(m)]
ZERO_STEP_METHODS = [name for name, m in REPO_METHODS.items() if _zero_steps(m)]


def _every_method_params() -> dict:
    """The tiny params with every repo method in them (loop settings of the tests, small aux nets)."""
    params = tiny_params_dict()
    params["train"].update(steps=RESUME_STEPS, log_every=LOG_EVERY, checkpoint_every=RESUME_EVERY)
    params["denoiser"] = {"width": 8, "depth": 2}
    params["density"] = {"width": 8, "layers": 2, "kernel": 3, "first_kernel": 3, "components": 2, "features": 2}
    params["methods"] = {}
    for name, method in REPO_METHODS.items():
        entry = dataclasses.asdict(method)
        entry["train"] = {k: v for k, v in entry["train"].items() if k not in LOOP_KEYS}
        if _zero_steps(method):
            entry["train"]["steps"] = 0
        params["methods"][name] = entry
    return params


def _method_settings(method: str) -> RunSettings:
    return RunSettings.parse(resolve(load_params(_every_method_params()), "grass", method))


@pytest.fixture(scope="module")
def guide_checkpoint(tiny_data, tmp_path_factory):
    """``guide_checkpoint(method)``: the checkpoint of the run that guides ``method`` (its ``guide``),
    trained tiny once per module when first asked for; None for an unguided method."""
    made: dict[str, Path] = {}

    def get(method: str) -> Path | None:
        guide = REPO_METHODS[method].guide
        if not guide:
            return None
        if guide not in made:
            out = tmp_path_factory.mktemp(f"guide-{guide}")
            train(_method_settings(guide), tiny_data, out / "model.pt", out / "log.csv", progress=False)
            made[guide] = out / "model.pt"
        return made[guide]

    return get


def _assert_identical(a, b, where: str) -> None:
    """Nested dicts / lists of tensors and plain values: equal to the last bit, dtypes included."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_every_method_of_params_yaml_is_in_the_resume_tests():
    """A guard on the parametrisation itself: the lists come from params.yaml, not from this file."""
    assert set(load_params(REPO_PARAMS).methods) <= set(TRAINED_METHODS) | set(ZERO_STEP_METHODS)
    assert not set(TRAINED_METHODS) & set(ZERO_STEP_METHODS)
    assert {"mse", "affgan", "dae", "affdg", "density", "affll"} <= set(TRAINED_METHODS)


@pytest.mark.parametrize("method", TRAINED_METHODS)
def test_interrupted_run_resumes_to_the_same_result(tmp_path, tiny_data, wrap_phases, guide_checkpoint, method):
    """Killed in step 7 of 8 (last state: step 4), rerun: bitwise the same weights, snapshots, moving
    average and loss log as a run never interrupted.

    The resume state holds everything the next steps depend on — weights, Adam moments, BatchNorm
    buffers, the torch RNG (instance noise, dequantisation, DAE noise, the generator's noise maps), the
    batch sampler's RNG, the loss sums since the last log row and the snapshots so far — and the loop is
    deterministic on the CPU in one process with a fixed thread count. A restart, a different batch or
    noise draw, or lost optimiser state would each move the weights by ~lr per step.
    """
    settings = _method_settings(method)
    guide = guide_checkpoint(method)

    def run(out_dir):
        ckpt, log = out_dir / "model.pt", out_dir / "log.csv"
        frame = train(settings, tiny_data, ckpt, log, resume_dir=out_dir / ".resume", progress=False,
                      guide_checkpoint=guide)
        return frame, ckpt, log

    reference, ref_ckpt, _ = run(tmp_path / "reference")  # the same settings, never interrupted

    calls = {"n": 0, "armed": True}

    def crash_in_step(phase, objective):
        crash_at = CRASH_STEP * len(objective.phases) - 1  # the last phase of CRASH_STEP

        def loss(batch, progress):
            if calls["armed"] and calls["n"] == crash_at:
                raise Interrupted("simulated kill")
            calls["n"] += 1
            return phase.loss(batch, progress)

        return loss

    built = wrap_phases(crash_in_step)
    out = tmp_path / "run"
    with pytest.raises(Interrupted, match="simulated kill"):
        run(out)
    assert not (out / "model.pt").exists() and not (out / "log.csv").exists()
    state, _ = checkpoint.load(out / ".resume" / "state.pt")
    assert state["step"] == RESUME_EVERY

    # Rerun with the same settings and resume dir: only steps 5..8 are trained.
    calls.update(n=0, armed=False)
    frame, ckpt, log_path = run(out)
    per_step = len(built[-1].phases)  # the SR model's or aux network's objective (built after any guide)
    assert calls["n"] == (RESUME_STEPS - RESUME_EVERY) * per_step, "the rerun did not continue from the saved step"
    assert not (out / ".resume" / "state.pt").exists()

    expected_steps = sorted({*range(LOG_EVERY, RESUME_STEPS + 1, LOG_EVERY), RESUME_STEPS})
    assert pd.read_csv(log_path)["step"].tolist() == expected_steps  # continued: no restart, no duplicate
    columns = [c for c in reference.columns if c != "seconds"]
    assert list(frame.columns) == list(reference.columns)
    pd.testing.assert_frame_equal(frame[columns], reference[columns], check_exact=True)

    (resumed, resumed_settings), (ref, ref_settings) = checkpoint.load(ckpt), checkpoint.load(ref_ckpt)
    assert resumed_settings == ref_settings
    _assert_identical(resumed, ref, f"{method} checkpoint")  # networks, raw_networks, snapshots, channels


@pytest.mark.parametrize("method", ZERO_STEP_METHODS)
def test_zero_step_method_saves_its_untrained_model(tmp_path, tiny_data, guide_checkpoint, method):
    """Nothing to interrupt (no step is trained): the run writes the seeded, untrained networks at once."""
    settings = _method_settings(method)
    assert settings.train.steps == 0
    frame, ckpt, log_path = _run(settings, tiny_data, tmp_path)
    assert len(frame) == 0 and len(pd.read_csv(log_path)) == 0
    assert not (tmp_path / ".resume" / "state.pt").exists()
    fresh = build_objective(settings, 1).networks
    _assert_identical(_weights(ckpt), {k: v.state_dict() for k, v in fresh.items()}, f"{method} checkpoint")


def _interrupted_run(settings, data_dir, out_dir, wrap_phases, after_calls):
    """Run until the ``after_calls``-th phase call raises, leaving the periodic resume state behind."""
    calls = []

    def wrapper(phase, objective):
        def loss(batch, progress):
            calls.append(1)
            if len(calls) > after_calls:
                raise Interrupted("simulated kill")
            return phase.loss(batch, progress)
        return loss

    wrap_phases(wrapper)
    with pytest.raises(Interrupted):
        _run(settings, data_dir, out_dir)
    return out_dir / ".resume" / "state.pt"


def test_finished_run_leaves_no_resume_state_and_a_rerun_trains_afresh(tmp_path, tiny_data, make_settings):
    # Snakemake reruns a finished training only when its settings or code changed: then it must train
    # from scratch, not continue from the old final state.
    settings = make_settings("mse", steps=10, log_every=5, checkpoint_every=5)
    _, ckpt, _ = _run(settings, tiny_data, tmp_path)
    first = _weights(ckpt)
    assert not (tmp_path / ".resume" / "state.pt").exists()
    frame, ckpt, _ = _run(settings, tiny_data, tmp_path)
    assert frame["step"].tolist() == [5, 10]
    for key, value in first["generator"].items():  # same seed, same data: the same weights again
        assert torch.equal(_weights(ckpt)["generator"][key], value)


def test_resume_state_from_other_settings_is_an_error(tmp_path, tiny_data, make_settings, wrap_phases):
    state = _interrupted_run(make_settings("mse", steps=10, checkpoint_every=5), tiny_data, tmp_path,
                             wrap_phases, after_calls=7)
    assert state.is_file()
    with pytest.raises(CheckpointError) as info:
        _run(make_settings("mse", steps=10, checkpoint_every=5, lr=0.01), tiny_data, tmp_path)
    msg = str(info.value)
    assert str(state) in msg and "other settings" in msg and "train" in msg


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_resume_state_is_an_error(tmp_path, tiny_data, make_settings, wrap_phases, damage):
    settings = make_settings("mse", steps=10, checkpoint_every=5)
    state = _interrupted_run(settings, tiny_data, tmp_path, wrap_phases, after_calls=7)
    content = state.read_bytes()
    state.write_bytes(b"not a checkpoint at all" if damage == "garbage" else content[: len(content) // 2])
    with pytest.raises(CheckpointError) as info:
        _run(settings, tiny_data, tmp_path)
    assert str(state) in str(info.value) and "not a readable affsr checkpoint" in str(info.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_unreadable_checkpoint_is_an_error(tmp_path, tiny_data, make_settings, damage):
    _, ckpt, _ = _run(make_settings("mse", steps=0), tiny_data, tmp_path, resume=False)
    content = ckpt.read_bytes()
    if damage == "missing":
        ckpt.unlink()
    else:
        ckpt.write_bytes(b"\x00" * 64 if damage == "garbage" else content[: len(content) // 3])
    with pytest.raises(CheckpointError) as info:
        load_model(ckpt)
    assert str(ckpt) in str(info.value)


def test_checkpoint_of_other_shape_is_an_error(tmp_path, tiny_data, make_settings, tiny_params):
    _, ckpt, _ = _run(make_settings("mse", steps=0), tiny_data, tmp_path, resume=False)
    state, stored = checkpoint.load(ckpt)
    stored["generator"]["width"] = 16  # settings that do not fit the stored weights
    checkpoint.save(ckpt, state, stored)
    with pytest.raises(CheckpointError, match="do not fit") as info:
        load_model(ckpt)
    assert str(ckpt) in str(info.value)


# ---- errors ---------------------------------------------------------------------------------------------


def test_data_made_with_another_operator_is_an_error(tmp_path, make_settings):
    box_data = tmp_path / "box"
    prepare("skimage_grass", box_data, 16, operator_of("box", scale=4), n_train=8, n_val=2, n_test=2, seed=0)
    with pytest.raises(ConfigError) as info:
        _run(make_settings("mse", steps=2), box_data, tmp_path / "run")
    msg = str(info.value)
    assert "manifest.json" in msg and "box" in msg and "gaussian" in msg
    assert not (tmp_path / "run" / "model.pt").exists()


def test_nan_loss_is_a_training_error_naming_the_step(tmp_path, tiny_data, make_settings, wrap_phases):
    wrap_phases(lambda phase, objective: (lambda b, p: phase.loss(b, p) * math.nan))
    settings = make_settings("mse", steps=20, log_every=5)
    with pytest.raises(TrainingError) as info:
        _run(settings, tiny_data, tmp_path)
    msg = str(info.value)
    assert "step 5" in msg and "loss_pixel" in msg and "nan" in msg
    assert "grass/mse" in msg
    assert not (tmp_path / "model.pt").exists()


def test_cuda_request_without_cuda_is_a_config_error(tmp_path, tiny_data, make_settings):
    if torch.cuda.is_available():  # then "cuda" is valid: check that it is picked instead
        assert pick_device("cuda").type == "cuda"
        return
    with pytest.raises(ConfigError, match="cuda"):
        _run(make_settings("mse", steps=1, device="cuda"), tiny_data, tmp_path)


def test_stale_resume_state_is_discarded_when_asked(tmp_path, tiny_data, make_settings, capsys):
    # The workflow reruns a training only when its settings changed; then an old interrupted state
    # must not block it (discard_stale=True), while by hand the mismatch stays an error (above).
    settings = make_settings("mse", steps=10, checkpoint_every=5)
    with pytest.MonkeyPatch.context() as patch:
        original = train_module.build_objective

        def interrupted(*args, **kwargs):
            objective = original(*args, **kwargs)
            calls = []

            def loss(batch, progress, phase=objective.phases[0]):
                calls.append(1)
                if len(calls) > 7:
                    raise Interrupted("simulated kill")
                return phase.loss(batch, progress)

            objective.phases = [Phase("pixel", "generator", loss)]
            return objective

        patch.setattr(train_module, "build_objective", interrupted)
        with pytest.raises(Interrupted):
            _run(settings, tiny_data, tmp_path)
    state = tmp_path / ".resume" / "state.pt"
    assert state.is_file()
    changed = make_settings("mse", steps=10, checkpoint_every=5, lr=0.01)
    frame = train(changed, tiny_data, tmp_path / "model.pt", tmp_path / "log.csv",
                  resume_dir=tmp_path / ".resume", progress=False, discard_stale=True)
    assert frame["step"].tolist() == [5, 10]  # all ten steps ran: it started over
    err = capsys.readouterr().err
    assert "starting over" in err and str(state) in err
    assert not state.exists()


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_loss_mid_run_keeps_the_last_good_state(tmp_path, tiny_data, make_settings, wrap_phases, bad):
    """A loss that turns non-finite at step 13: the run stops naming the step, the resume state on disk is
    the good one of step 10 (never overwritten by a bad one) and a rerun with a healthy loss resumes there."""
    calls = {"n": 0}

    def poisoned(phase, objective):
        def loss(batch, progress):
            calls["n"] += 1
            value = phase.loss(batch, progress)
            return value * bad if calls["n"] >= 13 else value
        return loss

    wrap_phases(poisoned)
    settings = make_settings("mse", steps=40, log_every=4, checkpoint_every=5)
    with pytest.raises(TrainingError) as info:
        _run(settings, tiny_data, tmp_path)
    msg = str(info.value)
    assert "by step 15" in msg or "by step 16" in msg, msg  # caught at the next save (15) or log row (16)
    assert "(step 10)" in msg and str(tmp_path / ".resume" / "state.pt") in msg
    stored, _ = checkpoint.load(tmp_path / ".resume" / "state.pt")
    assert stored["step"] == 10
    assert all(torch.isfinite(t).all() for net in stored["networks"].values() for t in net.values()
               if t.is_floating_point())
    assert not (tmp_path / "model.pt").exists()


# ---- per-network learning rates and the generator's moving average ------------------------------------------


def test_lr_scale_sets_each_networks_learning_rate(tmp_path, tiny_data, make_settings):
    """`train.lr_scale` multiplies one network's lr: a generator at 1e-9 × lr barely moves while its
    discriminator, at the full lr, trains; an unknown network name is a ConfigError naming it."""
    untrained = make_settings("affgan", steps=0)
    _run(untrained, tiny_data, tmp_path / "init")
    start = _weights(tmp_path / "init" / "model.pt")
    _run(make_settings("affgan", steps=5, lr_scale={"generator": 1e-9}), tiny_data, tmp_path / "slow_g")
    trained = _weights(tmp_path / "slow_g" / "model.pt")

    def moved(net: str) -> float:
        return max(float((trained[net][k].float() - start[net][k].float()).abs().max())
                   for k in start[net] if start[net][k].is_floating_point() and "running" not in k)

    assert moved("generator") < 1e-9 and moved("discriminator") > 1e-4
    with pytest.raises(ConfigError, match="train.lr_scale: 'discriminatr' is not a network of this method"):
        _run(make_settings("affgan", steps=2, lr_scale={"discriminatr": 5.0}), tiny_data, tmp_path / "bad")


def test_ema_checkpoint_holds_the_average_and_the_raw_weights(tmp_path, tiny_data, make_settings):
    """With `train.ema` the checkpoint's generator is the moving average (what evaluate and upscale load)
    and `raw_networks` the last weights: after one step at decay 0.25, θ_ema = 0.25·θ₀ + 0.75·θ₁."""
    _run(make_settings("mse", steps=0), tiny_data, tmp_path / "init")
    theta0 = _weights(tmp_path / "init" / "model.pt")["generator"]
    _run(make_settings("mse", steps=1, ema=0.25), tiny_data, tmp_path / "ema")
    state, _ = checkpoint.load(tmp_path / "ema" / "model.pt")
    averaged, raw = state["networks"]["generator"], state["raw_networks"]["generator"]
    weights = [k for k in theta0 if "weight" in k and theta0[k].is_floating_point()]
    assert any(not torch.equal(raw[k], theta0[k]) for k in weights)
    for k in weights:
        torch.testing.assert_close(averaged[k], torch.lerp(theta0[k], raw[k], 0.75), rtol=0, atol=1e-7)
    model, _ = load_model(tmp_path / "ema" / "model.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(v, averaged[k])
    # without ema: no raw copy, the generator is the last weights
    _run(make_settings("mse", steps=1), tiny_data, tmp_path / "plain")
    plain, _ = checkpoint.load(tmp_path / "plain" / "model.pt")
    assert "raw_networks" not in plain and all(torch.equal(plain["networks"]["generator"][k], raw[k]) for k in weights)


def test_interrupted_ema_run_resumes_to_the_same_average(tmp_path, tiny_data, make_settings, wrap_phases):
    settings = make_settings("affgan", steps=20, log_every=5, checkpoint_every=5, ema=0.9)
    _run(settings, tiny_data, tmp_path / "reference")
    calls = {"n": 0, "crash": True}

    def crash_at_step_13(phase, objective):
        def loss(batch, progress):
            calls["n"] += 1
            if calls["crash"] and calls["n"] > 2 * 12:  # 2 phases per step; last saved state: step 10
                raise Interrupted("simulated kill")
            return phase.loss(batch, progress)
        return loss

    wrap_phases(crash_at_step_13)
    with pytest.raises(Interrupted):
        _run(settings, tiny_data, tmp_path / "run")
    state, _ = checkpoint.load(tmp_path / "run" / ".resume" / "state.pt")
    assert state["step"] == 10 and state["ema"] is not None
    calls["crash"] = False
    _run(settings, tiny_data, tmp_path / "run")
    for where in ("networks", "raw_networks"):
        a, _ = checkpoint.load(tmp_path / "reference" / "model.pt")
        b, _ = checkpoint.load(tmp_path / "run" / "model.pt")
        for net in a[where]:
            for k in a[where][net]:
                assert torch.equal(a[where][net][k], b[where][net][k]), (where, net, k)


@pytest.mark.parametrize("bad, message", [({"ema": 1.0}, "params.train.ema: must be in [0, 1)"),
                                           ({"lr_scale": {"discriminator": 0}}, "params.train.lr_scale.discriminator")])
def test_bad_ema_or_lr_scale_is_a_config_error(make_settings, bad, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_settings("affgan", **bad)
