"""The GPU-ready ``train:`` options (affsr.training.accelerate), each run on the CPU: it trains, it ends close to
fp32 eager, bf16 keeps the projection and the density model in fp32, compile falls back cleanly, and
the CPU default is bitwise the plain fp32 eager loop."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from affsr.training import checkpoint
from affsr.training.accelerate import FP32_MODULES, Plan, accelerated, plan
from affsr.training.build import build_objective
from affsr.training.batches import image_batch_sampler
from affsr.training.checkpoint import load_model
from affsr.config.study import RunSettings
from affsr.config.training import TrainConfig
from affsr.data.load import load_split
from affsr.nets.density import DensityModel
from affsr.errors import ConfigError
from affsr.params import load_params, resolve
from affsr.training.loop import fit
from affsr.training.run import train
from conftest import tiny_params_dict

CPU = torch.device("cpu")
OFF = {"precision": "fp32", "channels_last": False, "compile": False, "data_on_device": True}
STEPS = 30


def _fit(make_settings, tiny_data, method: str = "mse", **options):
    """Train ``method`` STEPS steps in-process on the tiny data; returns (objective, loss rows)."""
    settings = make_settings(method, steps=STEPS, log_every=10, lr=0.003, **options)
    lr, hr = load_split(tiny_data, "train", hr_bytes=True)
    run = plan(settings.train, CPU)
    objective = build_objective(settings, 1)
    objective.initial = {k: v.clone() for k, v in _weights(objective).items()}
    sample = image_batch_sampler(lr, hr, settings.train.batch_size, CPU, run.memory_format)
    state = fit(objective, sample, settings.train, method, settings.to_dict(), CPU, progress=False)
    return objective, [{k: v for k, v in r.items() if k != "seconds"} for r in state.rows]


def _weights(objective) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v for n, net in objective.networks.items() for k, v in net.state_dict().items()}


def _loss(rows) -> list[float]:
    return [sum(v for k, v in r.items() if k.startswith("loss_")) for r in rows]


def test_auto_on_the_cpu_is_all_off_and_installs_nothing(make_settings, tiny_data):
    assert plan(TrainConfig(), CPU) == Plan(CPU, dtype=None, channels_last=False, compile=False, data_on_device=True)
    objective = build_objective(make_settings("affgan"), 1)
    with accelerated(objective.networks, [], plan(TrainConfig(), CPU)):
        assert not any("forward" in m.__dict__ for net in objective.networks.values() for m in net.modules())
        assert all(p.is_contiguous() for net in objective.networks.values() for p in net.parameters())


def test_cpu_defaults_are_bitwise_the_options_switched_off(make_settings, tiny_data):
    """The default CPU run and one with every option explicitly off: the same weights to the last bit."""
    auto, auto_rows = _fit(make_settings, tiny_data, "affgan")
    off, off_rows = _fit(make_settings, tiny_data, "affgan", **OFF)
    a, b = _weights(auto), _weights(off)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert auto_rows == off_rows


# option → how close to fp32 eager after STEPS steps: distance of the weights from fp32 eager's relative
# to how far fp32 eager moved them, and relative difference of the last logged loss. bf16 (measured:
# 0.14 and 0.9 %) rounds every activation to 8 bits of mantissa, so Adam's steps differ a little;
# channels_last only reorders the convolutions' sums (round-off).
OPTIONS = {
    "bf16": ({"precision": "bf16"}, 0.3, 0.05),
    "channels_last": ({"channels_last": True}, 1e-3, 1e-4),
    "data_on_host": ({"data_on_device": False}, 0.0, 0.0),  # the CPU: nothing to move, the same run
    "bf16+channels_last": ({"precision": "bf16", "channels_last": True}, 0.3, 0.05),
}


def _distance(objective, reference) -> float:
    """‖θ − θ_ref‖ / ‖θ_ref − θ_0‖ over every floating weight and buffer (θ_0: the common start)."""
    got, ref, start = _weights(objective), _weights(reference), reference.initial
    keys = [k for k in ref if ref[k].is_floating_point()]
    flat = lambda d: torch.cat([d[k].float().flatten() for k in keys])  # noqa: E731
    return float((flat(got) - flat(ref)).norm() / (flat(ref) - flat(start)).norm())


@pytest.mark.parametrize("name", OPTIONS)
def test_each_option_trains_and_ends_close_to_fp32_eager(make_settings, tiny_data, name):
    options, weight_tol, loss_tol = OPTIONS[name]
    reference, reference_rows = _fit(make_settings, tiny_data, "mse", **OFF)
    objective, rows = _fit(make_settings, tiny_data, "mse", **options)
    loss = _loss(rows)
    assert loss[-1] < loss[0], f"{name}: loss did not go down: {loss}"
    assert abs(loss[-1] - _loss(reference_rows)[-1]) <= loss_tol * _loss(reference_rows)[-1]
    distance = _distance(objective, reference)
    assert distance <= weight_tol, f"{name}: weights {distance:.3g} (relative) from fp32 eager"


def test_bf16_gan_trains_and_keeps_every_network_finite(make_settings, tiny_data):
    objective, rows = _fit(make_settings, tiny_data, "affgan", precision="bf16", channels_last=True)
    assert all(torch.isfinite(v).all() for v in _weights(objective).values())
    assert all(torch.isfinite(torch.tensor(_loss([r]))).all() for r in rows)


def test_bf16_keeps_the_projected_output_consistent(make_settings, tiny_data):
    settings = make_settings("affgan")
    model = build_objective(settings, 1).context.model.eval()
    lr, _ = load_split(tiny_data, "test")
    bf16 = Plan(CPU, dtype=torch.bfloat16, channels_last=True)
    with torch.no_grad(), accelerated({"generator": model}, [], bf16):
        sr = model(lr)
        # the generator itself did run in bf16: without the fp32 projection |Aŷ − x| would be ~1e-3
        with torch.autocast("cpu", dtype=torch.bfloat16):
            raw = model.generator(lr)
    assert sr.dtype == torch.float32 and raw.dtype == torch.bfloat16
    assert float((model.op(sr) - lr).abs().max()) <= 1e-5
    assert not any("forward" in m.__dict__ for m in model.modules())  # wrappers gone after the block


def test_bf16_leaves_the_density_model_in_fp32():
    """Inside a bf16 plan the density model (trained or a guide) gives exactly its fp32 values."""
    settings_density = load_params(tiny_params_dict()).density
    density = DensityModel(1, settings_density)
    assert isinstance(density, FP32_MODULES)
    y = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    expected = density(y)
    for networks, guides in (({"density": density}, []), ({}, [density])):
        with accelerated(networks, guides, Plan(CPU, dtype=torch.bfloat16)):
            got = density(y)
        assert got.dtype == torch.float32 and torch.equal(got, expected)


def test_compile_failure_prints_one_note_and_trains_eagerly(make_settings, tiny_data, monkeypatch, capsys):
    reference, _ = _fit(make_settings, tiny_data, "mse", **OFF)

    def broken(*args, **kwargs):
        raise RuntimeError("no C compiler found\nmore detail")

    monkeypatch.setattr(torch, "compile", broken)
    objective, rows = _fit(make_settings, tiny_data, "mse", compile=True)
    err = capsys.readouterr().err
    assert err.count("affsr: note: torch.compile of generator failed (RuntimeError: no C compiler found)") == 1
    a, b = _weights(reference), _weights(objective)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_compile_failing_on_the_first_call_falls_back_too(make_settings, tiny_data, monkeypatch, capsys):
    """Compiling is lazy: a compiler missing shows on the first call. One note, then eager for good."""
    calls = []

    def lazy(fn, *args, **kwargs):
        def compiled(*a, **k):
            calls.append(1)
            raise RuntimeError("InvalidCxxCompiler")
        return compiled

    reference, reference_rows = _fit(make_settings, tiny_data, "affgan", **OFF)
    monkeypatch.setattr(torch, "compile", lazy)
    objective, rows = _fit(make_settings, tiny_data, "affgan", compile=True)
    err = capsys.readouterr().err
    assert err.count("affsr: note:") == 2  # generator and discriminator, once each
    assert len(calls) == 2 and rows == reference_rows
    a, b = _weights(reference), _weights(objective)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_compiled_network_trains_like_the_eager_one(tiny_data):
    """A real torch.compile (inductor, with this machine's C compiler) of the smallest network there is:
    a one-convolution denoiser (≈ 10 s, most of it compiling); 3 steps close to eager."""
    params = tiny_params_dict()
    params["denoiser"] = {"width": 4, "depth": 1}
    params["methods"]["dae"] = {"objective": "dae", "options": {"snapshots": 2}}
    lr, hr = load_split(tiny_data, "train", hr_bytes=True)

    def run(**options):
        params["train"].update(steps=3, log_every=3, **options)
        s = RunSettings.parse(resolve(load_params(params), "grass", "dae"))
        objective = build_objective(s, 1)
        state = fit(objective, image_batch_sampler(lr, hr, 8), s.train, "c", s.to_dict(), CPU, progress=False)
        return objective, state.rows

    eager, eager_rows = run(**OFF)
    compiled, compiled_rows = run(compile=True)
    a, b = _weights(eager), _weights(compiled)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    assert _loss(compiled_rows)[-1] == pytest.approx(_loss(eager_rows)[-1], rel=1e-4)


def test_bf16_channels_last_run_resumes_bitwise_and_its_checkpoint_loads(tmp_path, make_settings, tiny_data):
    """The options change no state_dict key: a bf16 + channels_last run killed after its resume state
    at step 4 resumes to the same weights as an uninterrupted run, and its checkpoint loads as before
    (into a contiguous fp32 model) with consistent outputs."""
    settings = make_settings("affgan", steps=8, log_every=3, checkpoint_every=4, precision="bf16",
                             channels_last=True)
    lr, hr = load_split(tiny_data, "train", hr_bytes=True)

    def run(resume_path=None, crash_at=None):
        objective = build_objective(settings, 1)
        if crash_at is not None:
            calls = [0]
            inner = objective.phases[-1].loss

            def crashing(batch, progress):
                calls[0] += 1
                if calls[0] == crash_at:
                    raise KeyboardInterrupt
                return inner(batch, progress)
            objective.phases[-1] = dataclasses.replace(objective.phases[-1], loss=crashing)
        sample = image_batch_sampler(lr, hr, settings.train.batch_size, CPU, torch.channels_last)
        fit(objective, sample, settings.train, "r", settings.to_dict(), CPU, resume_path, progress=False)
        return objective

    straight = run()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "state.pt", crash_at=6)
    assert checkpoint.load(tmp_path / "state.pt")[0]["step"] == 4
    resumed = run(tmp_path / "state.pt")
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)

    train(settings, tiny_data, tmp_path / "model.pt", tmp_path / "log.csv", progress=False)
    model, loaded = load_model(tmp_path / "model.pt")
    test_lr, _ = load_split(tiny_data, "test")
    with torch.no_grad():
        sr = model(test_lr)
    assert loaded == settings and float((model.op(sr) - test_lr).abs().max()) <= 1e-5


@pytest.mark.parametrize("key, value", [("precision", "fp16"), ("channels_last", "yes"), ("compile", 1),
                                        ("data_on_device", "maybe")])
def test_a_bad_option_is_refused_naming_its_key(key, value):
    with pytest.raises(ValueError, match=f"^{key}: "):
        TrainConfig(**{key: value})
    params = tiny_params_dict()
    params["train"][key] = value
    with pytest.raises(ConfigError, match=f"train.{key}"):
        load_params(params)
