"""Tests for affsr.train: the shared loop, its outputs, resuming, and its errors (tiny CPU runs)."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
import torch

import affsr.train as train_module
from affsr import checkpoint
from affsr.checkpoint import CheckpointError
from affsr.config import ConfigError
from affsr.data import load_split, prepare
from affsr.methods.base import Phase
from affsr.operators import Downsampling
from affsr.train import TrainingError, build_objective, load_model, train


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
    assert stored["data"] == {"source": "skimage_grass", "seed": 0}


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
    pass


@pytest.mark.parametrize("method", ["mse", "affgan"])
def test_interrupted_run_resumes_to_the_same_result(tmp_path, tiny_data, make_settings, wrap_phases, method):
    settings = make_settings(method, steps=40, log_every=5, checkpoint_every=10)
    stop_after_steps = 25  # last resume checkpoint before the crash: step 20

    # Reference: the same settings, never interrupted.
    reference, ref_ckpt, _ = _run(settings, tiny_data, tmp_path / "reference")

    calls = {"n": 0}

    def crash_after(phase, objective):
        per_step = len(objective.phases)

        def loss(batch, progress):
            if calls["n"] >= stop_after_steps * per_step:
                raise Interrupted("simulated kill")
            calls["n"] += 1
            return phase.loss(batch, progress)

        return loss

    wrap_phases(crash_after)
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        _run(settings, tiny_data, out)
    assert (out / ".resume" / "state.pt").is_file()
    assert not (out / "model.pt").exists() and not (out / "log.csv").exists()
    state, _ = checkpoint.load(out / ".resume" / "state.pt")
    assert state["step"] == 20

    # Rerun with the same settings and resume dir: only steps 21..40 are trained.
    calls["n"] = -10**9  # no more crashes; count the calls of the rerun from a known offset
    start = calls["n"]
    frame, ckpt, log_path = _run(settings, tiny_data, out)
    per_step = 2 if method == "affgan" else 1
    assert calls["n"] - start == 20 * per_step, "the rerun did not continue from step 20"
    log = pd.read_csv(log_path)
    assert log["step"].tolist() == list(range(5, 41, 5))  # continues, no restart from 1, no duplicates
    loss_columns = [c for c in reference.columns if c.startswith("loss_")]
    pd.testing.assert_frame_equal(log[loss_columns], reference[loss_columns], rtol=0, atol=1e-6)

    # The resume state holds everything the next steps depend on — weights, Adam moments, BatchNorm
    # buffers, the torch RNG (instance noise) and the batch sampler's RNG — and the loop is deterministic on
    # the CPU in one process with a fixed thread count, so the resumed run repeats the uninterrupted one
    # exactly (bitwise in practice). 1e-6 leaves room only for round-off: a restart, a different batch or
    # noise draw, or lost optimiser state each move the weights by ~lr = 1e-3 per step.
    resumed, ref = _weights(ckpt), _weights(ref_ckpt)
    assert set(resumed) == set(ref)
    for net in ref:
        for key, value in ref[net].items():
            torch.testing.assert_close(resumed[net][key], value, rtol=0, atol=1e-6, msg=f"{net}.{key}")


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
    prepare("skimage_grass", box_data, 16, Downsampling.box(4), n_train=8, n_val=2, n_test=2, seed=0)
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
        assert train_module.pick_device("cuda").type == "cuda"
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
