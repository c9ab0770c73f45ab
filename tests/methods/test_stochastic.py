"""Beyond the paper: a stochastic AffGAN (noise input) gives several answers per LR input, every one
of them consistent with it; evaluation measures their diversity and the consistency of each draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affsr.config.study import RunSettings
from affsr.errors import ConfigError
from affsr.params import load_params, resolve
from affsr.evaluation.evaluate import evaluate, save_samples
from affsr.nets.generator import Generator
from affsr.nets.sr_model import SRModel
from affsr.operators.downsampling import Downsampling
from affsr.training.run import train

OP = Downsampling.gaussian(1.0, 9, 4)


def test_noise_input_gives_different_outputs_all_consistent():
    torch.manual_seed(0)
    model = SRModel(Generator(1, 4, width=8, blocks=1, noise=3), OP, "projected").eval()
    x = OP(torch.rand(2, 1, 16, 16))
    with torch.no_grad():
        a, b = model(x), model(x)
    assert (a - b).abs().max() > 1e-3  # different answers
    for y in (a, b):
        assert (OP(y) - x).abs().max() < 1e-5  # each one consistent
    deterministic = SRModel(Generator(1, 4, width=8, blocks=1), OP, "projected").eval()
    with torch.no_grad():
        assert torch.equal(deterministic(x), deterministic(x))


def test_method_overrides_the_generator_and_rejects_negative_noise(tiny_params):
    tiny_params["methods"]["affgan_z"] = {"objective": "gan", "constraint": "projected", "generator": {"noise": 2}}
    params = load_params(tiny_params)
    assert resolve(params, "grass", "affgan_z")["generator"]["noise"] == 2
    assert resolve(params, "grass", "affgan")["generator"]["noise"] == 0
    tiny_params["methods"]["affgan_z"]["generator"] = {"noise": -1}
    with pytest.raises(ConfigError, match=r"params\.methods\.affgan_z\.generator\.noise"):
        load_params(tiny_params)
    tiny_params["methods"]["affgan_z"]["generator"] = {"nosie": 1}
    with pytest.raises(ConfigError, match="did you mean 'noise'"):
        load_params(tiny_params)


def test_trained_stochastic_affgan_is_evaluated_with_its_draws(tmp_path, tiny_data, tiny_params):
    tiny_params["methods"]["affgan_z"] = {"objective": "gan", "constraint": "projected", "generator": {"noise": 2}}
    tiny_params["train"]["steps"] = 5
    settings = RunSettings.parse(resolve(load_params(tiny_params), "grass", "affgan_z"))
    train(settings, tiny_data, tmp_path / "model.pt", tmp_path / "log.csv", progress=False)
    metrics, draws = evaluate(tiny_data, "affgan_z", tmp_path / "model.pt")
    values = metrics.set_index("metric")["value"]
    assert draws.ndim == 5 and draws.shape[1] == 4
    assert values["diversity"] > 1e-4 and values["lr_mse_draws"] < 1e-10 and values["lr_mse"] < 1e-10
    again, _ = evaluate(tiny_data, "affgan_z", tmp_path / "model.pt")
    assert again.equals(metrics)  # the draws are seeded: reruns give the same numbers
    save_samples(tmp_path / "s.npz", draws, 3)
    with np.load(tmp_path / "s.npz") as z:
        assert z["sr"].shape == (3, *draws.shape[2:]) and z["draws"].shape == (3, *draws.shape[1:])


def test_draws_figure(tmp_path):
    from affsr.report import plots

    hr = np.random.default_rng(0).random((2, 3, 16, 16))
    draws = np.clip(hr[:, None] + 0.05 * np.random.default_rng(1).standard_normal((2, 3, 3, 16, 16)), 0, 1)
    plots.draws_figure(hr[:, :, ::4, ::4], hr, draws, tmp_path / "d.png", "test")
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="draws"):
        plots.draws_figure(hr[:, :, ::4, ::4], hr, draws[:, 0], tmp_path / "e.png", "bad")
