"""Tests for the DAE objective (σ curriculum, snapshots) and denoiser-guided SR (AffDG / SoftDG).

Tiny CPU runs: a denoiser of width 8 and depth 2, the session's 16 px grass data.
"""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
import torch
from torch import nn

from affsr.training import checkpoint
from affsr.config.study import RunSettings
from affsr.config.training import TrainConfig
from affsr.params import load_params, resolve
from affsr.data.load import load_split
from affsr.methods import super_resolves
from affsr.methods import denoiser_guided as dg_module
from affsr.methods.base import Batch, Guide, Phase, current_guide
from affsr.methods.dae import Options as DaeOptions
from affsr.methods.dae import sigma_schedule
from affsr.training.build import build_objective
from affsr.training.checkpoint import load_guides, load_model
from affsr.training.loop import fit
from affsr.training.run import train

DAE_OPTIONS = {"sigma_start": 0.5, "sigma_end": 0.01, "snapshots": 5}
SIGMAS = [0.5 * (0.01 / 0.5) ** (k / 4) for k in range(5)]  # the geometric schedule, by hand


def _params(tiny_params: dict, dae_options: dict | None = None, **guided: object) -> dict:
    params = copy.deepcopy(tiny_params)
    params["denoiser"] = {"width": 8, "depth": 2}
    params["methods"] = {
        "dae": {"objective": "dae", "constraint": "none", "options": dae_options or DAE_OPTIONS},
        "affdg": {"objective": "denoiser_guided", "constraint": "projected", "guide": "dae", **guided},
        "softdg": {"objective": "denoiser_guided", "constraint": "soft", "guide": "dae",
                   "consistency_weight": 1.0},
        "dg_none": {"objective": "denoiser_guided", "constraint": "none", "guide": "dae"},
        "dg_noisy": {"objective": "denoiser_guided", "constraint": "none", "guide": "dae",
                     "options": {"noise_input": True}},
    }
    return params


def _settings(params: dict, method: str, **train: object) -> RunSettings:
    p = copy.deepcopy(params)
    p["train"].update(train)
    return RunSettings.parse(resolve(load_params(p), "grass", method))


@pytest.fixture
def params(tiny_params) -> dict:
    return _params(tiny_params)


@pytest.fixture(scope="module")
def batch(tiny_data) -> Batch:
    lr, hr = load_split(tiny_data, "train")
    return Batch(lr=lr[:8], hr=hr[:8], hr_unpaired=hr[8:16])


@pytest.fixture(scope="module")
def dae_run(tiny_data, tmp_path_factory):
    """A tiny DAE run (20 steps, 5 snapshots): (settings, checkpoint path, log, params)."""
    from conftest import tiny_params_dict

    params = _params(tiny_params_dict())
    settings = _settings(params, "dae", steps=20, log_every=4)
    out = tmp_path_factory.mktemp("dae")
    torch.manual_seed(0)
    log = train(settings, tiny_data, out / "dae.pt", out / "dae.csv", progress=False)
    return settings, out / "dae.pt", log, params


class Scaled(nn.Module):
    """D(y) = a·y + (1 − a)·c: the exact denoiser of a Gaussian prior centred on c; s = (1 − a)(c − y)/σ²."""

    def __init__(self, a: float = 0.5, c: float = 0.0):
        super().__init__()
        self.a, self.c = a, c
        self.calls = 0

    def forward(self, y):
        self.calls += 1
        return self.a * y + (1 - self.a) * self.c


def _guided(params: dict, method: str, guides: list[Guide]):
    return build_objective(_settings(params, method), 1, guides)


def _capture_output(model: nn.Module) -> list[torch.Tensor]:
    """Keep each ŷ the model returns, with its gradient retained."""
    seen: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        output.retain_grad()
        seen.append(output)

    model.register_forward_hook(hook)
    return seen


# ---- dae: options and schedule --------------------------------------------------------------------------


def test_dae_is_auxiliary_and_denoiser_guided_is_guided_by_it():
    assert super_resolves("dae") is False
    assert super_resolves("denoiser_guided") is True
    assert dg_module.GUIDED_BY == "dae"
    assert dg_module.Options().noise_input is False
    assert DaeOptions() == DaeOptions(sigma_start=0.5, sigma_end=0.01, snapshots=5)


@pytest.mark.parametrize("options", [
    {"sigma_end": 0.0},
    {"sigma_end": -0.1},
    {"sigma_start": 0.1, "sigma_end": 0.2},
    {"snapshots": 0},
    {"snapshots": 1},  # one segment cannot go from 0.5 to 0.01
])
def test_dae_rejects_bad_options(options, tiny_params):
    params = _params(tiny_params, {**DAE_OPTIONS, **options})
    key = "snapshots" if "snapshots" in options else "sigma_end"
    with pytest.raises(ValueError, match=rf"options\.{key}: "):
        build_objective(_settings(params, "dae"), 1)


def test_dae_single_snapshot_with_one_sigma_is_fine(tiny_params):
    params = _params(tiny_params, {"sigma_start": 0.2, "sigma_end": 0.2, "snapshots": 1})
    dae = build_objective(_settings(params, "dae"), 1)
    assert dae.snapshot_points == [1.0]
    assert dae.sigma(0.0) == dae.sigma(0.99) == 0.2


def test_dae_sigma_schedule_is_geometric_decreasing_and_constant_per_segment(params):
    dae = build_objective(_settings(params, "dae"), 1)
    assert set(dae.networks) == {"denoiser"}
    assert [p.name for p in dae.phases] == ["denoise"] and dae.phases[0].network == "denoiser"
    assert dae.snapshot_points == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert sigma_schedule(DaeOptions(**DAE_OPTIONS)) == pytest.approx(SIGMAS)
    segments = [[dae.sigma(k / 5 + f / 5) for f in (0.0, 0.3, 0.7, 0.999)] for k in range(5)]
    for k, values in enumerate(segments):
        assert values == pytest.approx([SIGMAS[k]] * 4), f"segment {k} is not constant"
    firsts = [values[0] for values in segments]
    assert firsts[0] == pytest.approx(0.5) and firsts[-1] == pytest.approx(0.01)
    assert dae.sigma(1.0) == pytest.approx(0.01)
    ratios = [b / a for a, b in zip(firsts, firsts[1:])]
    assert all(r < 1 for r in ratios)
    assert ratios == pytest.approx([ratios[0]] * 4)
    assert [dae.snapshot_label(p) for p in (0.0, 0.5, 0.95)] == pytest.approx([SIGMAS[0], SIGMAS[2], SIGMAS[4]])


def test_dae_loss_uses_the_segment_sigma(params, batch):
    dae = build_objective(_settings(params, "dae"), 1)
    dae.denoiser.residual[-1].weight.data.zero_()
    dae.denoiser.residual[-1].bias.data.zero_()  # D = identity: loss = σ² · mean ε²
    torch.manual_seed(3)
    for progress, sigma in ((0.0, SIGMAS[0]), (0.9, SIGMAS[4])):
        loss = dae.phases[0].loss(Batch(batch.lr, batch.hr.repeat(20, 1, 1, 1), batch.hr), progress)
        assert loss.item() == pytest.approx(sigma**2, rel=0.05)


@pytest.mark.parametrize("steps", [5, 8, 13, 20])
def test_dae_snapshots_in_fit_are_labelled_with_the_sigma_they_were_trained_at(params, batch, steps):
    """fit takes snapshot k at step round(k/K·steps) and labels it at (step−1)/steps; the label must be
    the σ that step trained with, and for steps ≥ 1.5 K every segment gets exactly one snapshot."""
    settings = _settings(params, "dae", steps=steps)
    dae = build_objective(settings, 1)
    used: list[float] = []  # the σ of each training step's loss
    original = dae.phases[0]

    def spy(batch_, progress):
        used.append(dae.sigma(progress))
        return original.loss(batch_, progress)

    dae.phases = [Phase(original.name, original.network, spy)]
    cfg = TrainConfig(steps=steps, batch_size=8, log_every=100, checkpoint_every=100, device="cpu")
    state = fit(dae, lambda _: batch, cfg, "dae", settings.to_dict(), torch.device("cpu"), progress=False)
    assert len(used) == steps
    labels = [s["label"] for s in state.snapshots]
    assert labels == pytest.approx(SIGMAS)
    # each label is the σ of the last update before the snapshot
    steps_at = sorted({max(1, round(p * steps)) for p in dae.snapshot_points})
    assert labels == pytest.approx([used[s - 1] for s in steps_at])
    assert used == sorted(used, reverse=True)


# ---- dae: a run, its snapshots, guides ------------------------------------------------------------------


def test_dae_run_learns_and_stores_one_snapshot_per_segment(dae_run, batch):
    settings, ckpt, log, params = dae_run
    assert list(log.columns) == ["step", "loss_denoise", "snapshot_label", "seconds"]
    assert log["snapshot_label"].tolist() == pytest.approx([SIGMAS[int((s - 1) / 4)] for s in log["step"]])
    state, _ = checkpoint.load(ckpt)
    assert set(state["networks"]) == {"denoiser"}
    snaps = state["snapshots"]
    assert len(snaps) == 5
    labels = [s["label"] for s in snaps]
    assert labels == pytest.approx(SIGMAS) and labels == sorted(labels, reverse=True)
    # the last snapshot is the final network
    for name, tensor in state["networks"]["denoiser"].items():
        assert torch.equal(tensor, snaps[-1]["networks"]["denoiser"][name])
    # learning: the trained denoiser beats its initialisation at σ_end on the same noise
    fresh = build_objective(settings, 1)
    trained = build_objective(settings, 1)
    trained.denoiser.load_state_dict(state["networks"]["denoiser"])
    losses = []
    for objective in (fresh, trained):
        torch.manual_seed(7)
        with torch.no_grad():
            losses.append(objective.phases[0].loss(batch, 0.99).item())
    assert losses[1] < losses[0], losses


def test_load_guides_gives_frozen_snapshots_in_order(dae_run, params):
    _, ckpt, _, _ = dae_run
    guides = load_guides(ckpt, _settings(params, "affdg"), 1)
    assert [g.label for g in guides] == pytest.approx(SIGMAS)
    state, _ = checkpoint.load(ckpt)
    for guide, snap in zip(guides, state["snapshots"]):
        assert not guide.network.training
        params_ = list(guide.network.parameters())
        assert params_ and not any(p.requires_grad for p in params_)
        for name, tensor in guide.network.state_dict().items():
            assert torch.equal(tensor, snap["networks"]["denoiser"][name])
    first, last = (dict(g.network.named_parameters()) for g in (guides[0], guides[-1]))
    assert any(not torch.equal(first[k], last[k]) for k in first), "snapshots are not distinct copies"


# ---- denoiser_guided: gradient, steps, curriculum, constraints ------------------------------------------


@pytest.mark.parametrize("method", ["dg_none", "affdg"])
def test_generator_gradient_wrt_output_is_minus_score_over_batch(params, batch, method):
    sigma = 0.1
    guided = _guided(params, method, [Guide(label=sigma, network=Scaled(0.5))])
    seen = _capture_output(guided.context.model)
    loss = guided.phases[0].loss(batch, 0.0)
    loss.backward()
    (sr,) = seen
    b = sr.shape[0]
    score = (0.5 * sr - sr).detach() / sigma**2  # s(ŷ) for D(y) = y/2
    torch.testing.assert_close(sr.grad, -score / b, rtol=1e-5, atol=1e-6)
    # the value: ½ mean_b ‖D(ŷ) − ŷ‖² / σ² (the penalty is zero without the soft constraint)
    expected = 0.5 * (0.5 * sr.detach()).square().sum() / (b * sigma**2)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_noisy_input_evaluates_the_score_at_a_noised_output(tiny_params, batch):
    sigma = 0.2
    guided = _guided(_params(tiny_params), "dg_noisy", [Guide(label=sigma, network=Scaled(0.5))])
    seen = _capture_output(guided.context.model)
    torch.manual_seed(11)
    guided.phases[0].loss(batch, 0.0).backward()
    (sr,) = seen
    torch.manual_seed(11)
    noisy = sr.detach() + sigma * torch.randn_like(sr)
    score = -0.5 * noisy / sigma**2
    torch.testing.assert_close(sr.grad, -score / sr.shape[0], rtol=1e-5, atol=1e-6)


def test_no_gradient_reaches_the_denoiser(params, batch):
    from affsr.nets.denoiser import Denoiser

    denoiser = Denoiser(1, width=8, depth=2)  # deliberately left trainable: the objective must not use it so
    guided = _guided(params, "affdg", [Guide(label=0.1, network=denoiser)])
    guided.phases[0].loss(batch, 0.0).backward()
    assert all(p.grad is None for p in denoiser.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in guided.networks["generator"].parameters())


@pytest.mark.parametrize("method", ["dg_none", "affdg"])
def test_one_generator_step_lowers_the_denoiser_residual(params, batch, method):
    """With D(y) = (y + c)/2 (Gaussian prior at c) log p rises as ‖D(ŷ) − ŷ‖ = ‖ŷ − c‖/2 falls."""
    guide = Scaled(0.5, c=0.2)
    guided = _guided(params, method, [Guide(label=0.05, network=guide)])
    model = guided.context.model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    def residual() -> float:
        with torch.no_grad():
            sr = model(batch.lr)
            return (guide(sr) - sr).square().sum().item()

    before = residual()
    optimiser.zero_grad()
    guided.phases[0].loss(batch, 0.0).backward()
    optimiser.step()
    after = residual()
    assert after < before, (before, after)


def test_current_guide_walks_the_guides_in_order(params, batch):
    labels = [0.5, 0.1, 0.02]
    networks = [Scaled(0.5) for _ in labels]
    guided = _guided(params, "affdg", [Guide(label=s, network=n) for s, n in zip(labels, networks)])
    progresses = [i / 30 for i in range(30)] + [1.0]
    walked = [current_guide(guided.context, p).label for p in progresses]
    assert walked == sorted(walked, reverse=True)
    assert walked[0] == 0.5 and walked[-1] == 0.02
    assert [walked.count(s) for s in labels] == [10, 10, 11]
    assert [guided.snapshot_label(p) for p in progresses] == walked
    for progress, index in ((0.0, 0), (0.5, 1), (0.9, 2)):
        counts = [n.calls for n in networks]
        with torch.no_grad():
            guided.phases[0].loss(batch, progress)
        assert [n.calls - c for n, c in zip(networks, counts)] == [int(i == index) for i in range(3)]


def test_without_guides_the_loss_says_what_is_missing(params, batch):
    guided = build_objective(_settings(params, "affdg"), 1)
    with pytest.raises(ValueError, match="guide"):
        guided.phases[0].loss(batch, 0.0)


def _train_steps(guided, batch, steps=5):
    model = guided.context.model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for i in range(steps):
        optimiser.zero_grad()
        guided.phases[0].loss(batch, i / steps).backward()
        optimiser.step()
    return model


def test_projected_stays_consistent_and_soft_pays_a_penalty(params, batch):
    guides = [Guide(label=0.1, network=Scaled(0.5, c=0.2)), Guide(label=0.02, network=Scaled(0.5, c=0.2))]
    model = _train_steps(_guided(params, "affdg", guides), batch)
    with torch.no_grad():
        sr = model(batch.lr)
    assert (torch.linalg.norm(model.op(sr) - batch.lr) / torch.linalg.norm(batch.lr)).item() < 1e-5

    soft = _guided(params, "softdg", guides)
    model = _train_steps(soft, batch)
    with torch.no_grad():
        sr = model(batch.lr)
        # weight 1 × Σ|x − Aŷ| per image, mean over the batch (nats per image, like the guided term)
        penalty = (model.op(sr) - batch.lr).abs().flatten(1).sum(1).mean().item()
        with_penalty = soft.phases[0].loss(batch, 0.0).item()
        soft.context.consistency_weight = 0.0
        without = soft.phases[0].loss(batch, 0.0).item()
    assert penalty > 1e-4
    assert with_penalty - without == pytest.approx(penalty, rel=1e-3)


def test_affdg_end_to_end_with_dae_snapshots(dae_run, tiny_data, tmp_path):
    _, dae_ckpt, _, params = dae_run
    settings = _settings(params, "affdg", steps=20, log_every=5)
    log = train(settings, tiny_data, tmp_path / "affdg.pt", tmp_path / "affdg.csv", progress=False,
                guide_checkpoint=dae_ckpt)
    written = pd.read_csv(tmp_path / "affdg.csv")
    assert list(written.columns) == ["step", "loss_generator", "snapshot_label", "seconds"]
    assert len(log) == 4 and written["loss_generator"].map(math.isfinite).all()
    labels = written["snapshot_label"].tolist()
    # rows at steps 5, 10, 15, 20 → progress 4/20, 9/20, 14/20, 19/20 → snapshots 1, 2, 3, 4
    assert labels == pytest.approx(SIGMAS[1:])
    assert all(b < a for a, b in zip(labels, labels[1:]))
    model, loaded = load_model(tmp_path / "affdg.pt")
    assert loaded.guide == "dae" and model.constraint == "projected"
    lr, _ = load_split(tiny_data, "test")
    with torch.no_grad():
        sr = model(lr)
    assert torch.isfinite(sr).all()
    assert (torch.linalg.norm(model.op(sr) - lr) / torch.linalg.norm(lr)).item() < 1e-5
