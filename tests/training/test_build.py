"""Tests for affsr.training.build: the one way to build the device, the operator A, the objective (seeded), frozen
guides from snapshots and image batches."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from affsr.training.build import build_model, build_objective, guides_from_snapshots
from affsr.training.batches import image_batch_sampler
from affsr.training.accelerate import pick_device
from affsr.errors import ConfigError
from affsr.methods.base import Guide
from affsr.operators.kinds import build_operator


# ---- pick_device ---------------------------------------------------------------------------------------------


def test_pick_device_cuda_without_cuda_is_a_config_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="train.device is 'cuda' but no CUDA device is available"):
        pick_device("cuda")


def test_pick_device_auto_and_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device() == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda")  # no CUDA call is made to say so


# ---- the objective -------------------------------------------------------------------------------------------


def _weights(objective) -> dict[str, torch.Tensor]:
    return {f"{k}.{n}": t for k, net in objective.networks.items() for n, t in net.state_dict().items()}


@pytest.mark.parametrize("method", ["mse", "affgan"])
def test_build_objective_is_seeded(make_settings, tiny_params, method):
    settings = make_settings(method)
    first = _weights(build_objective(settings, 1))
    torch.manual_seed(123)  # the global RNG state before the call does not matter
    torch.rand(10)
    second = _weights(build_objective(settings, 1))
    assert first.keys() == second.keys() and len(first) > 0
    assert all(torch.equal(first[k], second[k]) for k in first)

    tiny_params["seed"] = 1
    other = _weights(build_objective(make_settings(method, tiny_params), 1))
    assert other.keys() == first.keys()
    assert not all(torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point())


def test_build_objective_networks_fit_the_channels(make_settings):
    objective = build_objective(make_settings("affgan"), 3)
    assert set(objective.networks) == {"generator", "discriminator"}
    out = objective.networks["generator"](torch.rand(2, 3, 4, 4))
    assert out.shape == (2, 3, 16, 16)


def test_build_objective_of_an_unknown_objective_is_a_config_error_with_a_hint(make_settings):
    settings = dataclasses.replace(make_settings("mse"), objective="pixle")
    with pytest.raises(ConfigError) as info:
        build_objective(settings, 1)
    message = str(info.value)
    assert message.startswith("settings.objective: 'pixle' is not one of: ")
    assert "(did you mean 'pixel'?)" in message
    assert "gan" in message and "dae" in message  # the allowed objectives are listed


def test_build_objective_of_bad_options_is_a_config_error(make_settings):
    settings = dataclasses.replace(make_settings("mse"), options={"los": "l2"})
    with pytest.raises(ConfigError, match=r"^settings\.options\.los: unknown key \(did you mean 'loss'\?\)"):
        build_objective(settings, 1)


def test_build_model_uses_the_settings_operator_and_constraint(make_settings):
    settings = make_settings("affgan")
    model = build_model(settings, 1)
    assert model.op.describe() == build_operator(settings.operator).describe()
    assert model.constraint == "projected"


# ---- guides from snapshots ------------------------------------------------------------------------------------


def test_guides_from_snapshots_are_frozen_copies_in_order_with_labels():
    torch.manual_seed(1)
    trained = [nn.Linear(3, 2) for _ in range(3)]
    snapshots = [{"label": label, "networks": {"denoiser": net.state_dict(), "other": {}}}
                 for label, net in zip([0.5, 0.2, 0.05], trained)]
    made = []

    def make_network():
        net = nn.Linear(3, 2)
        made.append(net)
        return net

    guides = guides_from_snapshots(snapshots, "denoiser", make_network)
    assert [type(g) for g in guides] == [Guide] * 3
    assert [g.label for g in guides] == [0.5, 0.2, 0.05]
    assert all(type(g.label) is float for g in guides)
    assert len({id(g.network) for g in guides}) == 3  # one network per snapshot, none shared
    for guide, net in zip(guides, trained):
        assert not guide.network.training
        assert not any(p.requires_grad for p in guide.network.parameters())
        for name, tensor in net.state_dict().items():
            assert torch.equal(guide.network.state_dict()[name], tensor)
    # the snapshots' own tensors are copied, not shared: changing a guide leaves the snapshot alone
    with torch.no_grad():
        guides[0].network.weight.add_(1.0)
    assert not torch.equal(guides[0].network.weight, snapshots[0]["networks"]["denoiser"]["weight"])


def test_guides_from_snapshots_of_a_wrong_network_raise():
    snapshots = [{"label": 1, "networks": {"denoiser": nn.Linear(3, 2).state_dict()}}]
    with pytest.raises(KeyError):
        guides_from_snapshots(snapshots, "density", lambda: nn.Linear(3, 2))
    with pytest.raises(RuntimeError):
        guides_from_snapshots(snapshots, "denoiser", lambda: nn.Linear(4, 2))


def test_guides_from_no_snapshots_are_none():
    assert guides_from_snapshots([], "denoiser", lambda: nn.Linear(1, 1)) == []


# ---- image batches ---------------------------------------------------------------------------------------------


def _split(n=10, c=2, h=3, scale=4):
    """lr/hr images that carry their own index (lr value i, hr bytes 10·i), so pairs can be checked."""
    index = torch.arange(n, dtype=torch.float32)[:, None, None, None]
    lr = index.expand(n, c, h, h).clone()
    hr_bytes = (10 * index).to(torch.uint8).expand(n, c, h * scale, h * scale).clone()
    return lr, hr_bytes


def test_image_batch_sampler_shapes_types_and_pairs():
    lr, hr_bytes = _split()
    batch = image_batch_sampler(lr, hr_bytes, 6)(torch.Generator().manual_seed(0))
    assert batch.lr.shape == (6, 2, 3, 3) and batch.lr.dtype == torch.float32
    assert batch.hr.shape == (6, 2, 12, 12) and batch.hr.dtype == torch.float32
    assert batch.hr_unpaired.shape == (6, 2, 12, 12) and batch.hr_unpaired.dtype == torch.float32
    for hr in (batch.hr, batch.hr_unpaired):
        assert float(hr.min()) >= 0.0 and float(hr.max()) <= 1.0
    # paired: hr is the uint8 image of the same index, divided by 255
    picked = batch.lr[:, 0, 0, 0].long()
    assert torch.equal(batch.hr, hr_bytes[picked].float() / 255.0)
    # the unpaired images are a second, independent draw of indices
    unpaired = (batch.hr_unpaired[:, 0, 0, 0] * 255).round().long() // 10
    assert not torch.equal(unpaired, picked)


def test_image_batch_sampler_same_generator_state_same_batches():
    lr, hr_bytes = _split()
    sample = image_batch_sampler(lr, hr_bytes, 4)
    a, b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    first = [sample(a) for _ in range(3)]
    second = [sample(b) for _ in range(3)]
    for x, y in zip(first, second):
        assert torch.equal(x.lr, y.lr) and torch.equal(x.hr, y.hr) and torch.equal(x.hr_unpaired, y.hr_unpaired)
    assert not torch.equal(first[0].lr, first[1].lr)  # the generator advances between batches
    other = sample(torch.Generator().manual_seed(8))
    assert not torch.equal(other.lr, first[0].lr)


def test_image_batch_sampler_uses_only_the_given_generator():
    lr, hr_bytes = _split()
    sample = image_batch_sampler(lr, hr_bytes, 4)
    torch.manual_seed(0)
    x = sample(torch.Generator().manual_seed(3))
    torch.manual_seed(99)
    y = sample(torch.Generator().manual_seed(3))
    assert torch.equal(x.lr, y.lr) and torch.equal(x.hr_unpaired, y.hr_unpaired)
