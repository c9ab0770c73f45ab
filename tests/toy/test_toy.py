"""Tests for affsr.toy (the 2-D MAP experiment, paper §5.1) and its figure: operator, model, data,
KDE ground truth, brute-force MAP, the study on a tiny configuration, Table 1 and Figure 1."""

from __future__ import annotations

import math

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from affsr.errors import ConfigError
from affsr.report.display_names import display_name
from affsr.params import load_params, resolve_toy, toy_methods
from affsr.report.plots import toy_figure
from affsr.toy.nets import ToyDenoiser, ToyModel, ToyNetworks
from affsr.toy.roll import V, ToyOperator, roll_batch_sampler, sample_roll
from affsr.toy.study import ToySettings, run_toy_study
from affsr.report.toy_table import table1
from affsr.toy.paper_table import BAYES_ROWS, PAPER_TABLE1
from affsr.toy.truth import RollKDE, line_estimates, line_posterior, map_estimates

REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def tiny_toy(**changes) -> dict:
    """params.yaml with its toy section shrunk to seconds (same methods, objectives and overrides)."""
    data = yaml.safe_load(REPO_PARAMS.read_text())
    toy = data["toy"]
    toy.update(restarts=2, kde_samples=3000, kde_grid_step=0.05, eval_samples=200, map_step=0.05, curve_points=21)
    toy["train"].update(steps=40, batch_size=32)
    toy["objectives"]["gan"]["train"]["steps"] = 20
    toy["objectives"]["gan"]["options"]["d_steps"] = 2
    toy["objectives"]["dae"]["train"]["steps"] = 40
    toy["objectives"]["dae"]["options"]["snapshots"] = 2
    toy["methods"]["mae"]["train"]["steps"] = 40
    toy.update(changes)
    return data


def settings_of(data: dict, seed: int = 0) -> ToySettings:
    return ToySettings.parse(resolve_toy(load_params({**data, "seed": seed})))


TINY = settings_of(tiny_toy())


@pytest.fixture(scope="module")
def kde() -> RollKDE:
    return RollKDE.fit(5000, 0.2, torch.Generator().manual_seed(0), grid_step=0.05)


@pytest.fixture(scope="module")
def study():
    return run_toy_study(TINY, progress=False)


# ---- operator and model --------------------------------------------------------------------------------


def test_pinv_satisfies_the_four_penrose_conditions_and_matches_numpy():
    op = ToyOperator()
    a = op(torch.eye(2, dtype=torch.float64)).T.numpy()  # columns = A e_i → A (1, 2)
    p = op.pinv(torch.eye(1, dtype=torch.float64)).T.numpy()  # A⁺ (2, 1)
    adjoint = op.adjoint(torch.eye(1, dtype=torch.float64)).T.numpy()
    np.testing.assert_allclose(a, [[0.5, 0.5]])
    np.testing.assert_allclose(adjoint, a.T)
    np.testing.assert_allclose(a @ p @ a, a, atol=1e-15)
    np.testing.assert_allclose(p @ a @ p, p, atol=1e-15)
    np.testing.assert_allclose((a @ p).T, a @ p, atol=1e-15)
    np.testing.assert_allclose((p @ a).T, p @ a, atol=1e-15)
    np.testing.assert_allclose(p, np.linalg.pinv(np.array([[0.5, 0.5]])), atol=1e-14)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        op(torch.zeros(3, 1))


@pytest.mark.parametrize("members", [1, 3])
def test_projected_model_is_exactly_consistent_and_others_are_not(members):
    torch.manual_seed(0)
    x = 4 * torch.randn(members * 50, 1)
    projected = ToyModel("projected", members=members)
    y = projected(x)
    assert y.shape == (members * 50, 2)
    assert (projected.op(y) - x).abs().max() < 1e-5  # float32 round-off only
    y64 = projected.double()(x.double())
    assert (projected.op(y64) - x.double()).abs().max() < 1e-13
    free = ToyModel("none", members=members)
    assert (free.op(free(x)) - x).abs().max() > 1e-2


def test_ensemble_member_is_the_same_network_and_gets_the_same_gradient():
    """An ensemble trained on a batch mean trains each member as if alone (up to the 1/R scale that
    Adam removes): the claim that lets all restarts share one run of the loop."""
    torch.manual_seed(0)
    members, b = 3, 16
    ensemble = ToyModel("projected", members=members)
    x = torch.randn(members * b, 1)
    target = torch.randn(members * b, 2)
    ((ensemble(x) - target) ** 2).mean().backward()
    for r in range(members):
        alone = ensemble.member(r)
        block = slice(r * b, (r + 1) * b)
        torch.testing.assert_close(alone(x[block]), ensemble(x)[block])
        alone.zero_grad()
        ((alone(x[block]) - target[block]) ** 2).mean().backward()
        for (_, pe), (_, pa) in zip(ensemble.named_parameters(), alone.named_parameters()):
            torch.testing.assert_close(pe.grad[r:r + 1] * members, pa.grad, rtol=1e-5, atol=1e-7)


def test_networks_factory_shapes_and_no_density():
    nets = ToyNetworks(hidden=8, dae_hidden=16, members=2)
    y = torch.randn(10, 2)
    assert nets.discriminator()(y).shape == (10,)
    denoiser = nets.denoiser()
    assert isinstance(denoiser, ToyDenoiser) and denoiser(y).shape == (10, 2)
    torch.testing.assert_close(denoiser.member(1)(y[5:]), denoiser(y)[5:])
    with pytest.raises(NotImplementedError):
        nets.density()


def _toy_error(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_params(data)
    return str(info.value)


def test_toy_section_is_validated_when_params_load():
    assert "params.toy.restarts: must be ≥ 1" in _toy_error(tiny_toy(restarts=0))
    assert "did you mean 'restarts'" in _toy_error(tiny_toy(restart=3))
    assert "params.toy.skip: 'afgan' is not a method in params.methods (did you mean 'affgan'?)" in _toy_error(
        tiny_toy(skip=["afgan"]))
    assert "params.toy.objectives.gann" in _toy_error(tiny_toy(objectives={"gann": {}}))
    assert "params.toy.consistency_weight: must be ≥ 0" in _toy_error(tiny_toy(consistency_weight=-1.0))
    bad = tiny_toy()
    bad["toy"]["objectives"]["gan"]["options"]["noise_end"] = 2.0  # above instance_noise 1.0
    assert "(the affgan run).options.noise_end" in _toy_error(bad)
    bad = tiny_toy()
    bad["toy"]["methods"]["mae"]["train"]["lr"] = -1
    assert "(the mae run).train.lr: must be > 0" in _toy_error(bad)


def test_toy_runs_the_params_methods_with_their_options_and_the_overrides():
    params = load_params(tiny_toy())
    assert list(TINY.methods) == toy_methods(params) == ["mse", "mae", "affgan", "softgan", "affdg", "softdg"]
    assert list(TINY.guides) == ["dae"]
    mae, gan, softdg = TINY.methods["mae"], TINY.methods["softgan"], TINY.methods["softdg"]
    assert (mae.objective, mae.constraint, mae.options) == ("pixel", "none", {"loss": "l1"})
    assert (mae.train.steps, mae.train.lr, mae.train.beta2) == (40, 0.003, 0.99)
    assert gan.options == {"instance_noise": 1.0, "noise_anneal": 0.5, "d_steps": 2, "noise_end": 0.2}
    own = yaml.safe_load(REPO_PARAMS.read_text())["toy"]["methods"]  # each soft model its calibrated weight
    assert (gan.train.beta1, gan.train.beta2) == (0.5, 0.999)
    assert gan.consistency_weight == own["softgan"]["consistency_weight"]
    assert softdg.consistency_weight == own["softdg"]["consistency_weight"] != gan.consistency_weight
    assert softdg.guide == "dae" and softdg.options == {"noise_input": True}
    assert TINY.guides["dae"].options == {"sigma_start": 0.5, "sigma_end": 0.25, "snapshots": 2}
    slots = [run.seed_slot for run in TINY.methods.values()]
    assert slots == list(range(6)) and TINY.guides["dae"].seed_slot == 99


# ---- data ---------------------------------------------------------------------------------------------


def test_roll_sampling_statistics():
    g = torch.Generator().manual_seed(1)
    clean = sample_roll(40_000, g, noisy=False, dtype=torch.float64)
    radius = clean.norm(dim=1)
    # r = 0.4 ν₁, ν₁ ~ N(10, 3²): mean 4, std 1.2; the angle is ν₁ itself
    assert abs(float(radius.mean()) - 4.0) < 0.03
    assert abs(float(radius.std()) - 1.2) < 0.03
    nu = radius / 0.4  # = ν₁ except for the ~0.04 % draws with ν₁ < 0 (there r < 0 and |r| = −0.4ν₁)
    match = (clean - radius[:, None] * torch.stack([torch.cos(nu), torch.sin(nu)], 1)).abs().amax(1) < 1e-9
    assert float(match.double().mean()) > 0.999
    assert float(radius.quantile(0.001)) > 0.1 and float(radius.max()) < 0.4 * (10 + 3 * 5.5)
    noisy = sample_roll(40_000, g)
    assert noisy.dtype == torch.float32
    excess = noisy.double().norm(dim=1) - 0.4 * torch.atan2(noisy[:, 1], noisy[:, 0]).double()
    # radius − 0.4·angle is 0.4·2πk + ν₂ (k whole turns): its distance to the 0.8π lattice has std ≈ 0.2
    residual = torch.remainder(excess + 0.4 * math.pi, 0.8 * math.pi) - 0.4 * math.pi
    assert 0.17 < float(residual.std()) < 0.23


def test_batch_sampler_is_seeded_paired_and_unpaired():
    sample = roll_batch_sampler(8, members=2)
    a, b = sample(torch.Generator().manual_seed(3)), sample(torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.hr, b.hr)
    assert a.lr.shape == (16, 1) and a.hr.shape == (16, 2) and a.hr_unpaired.shape == (16, 2)
    torch.testing.assert_close(a.lr, ToyOperator()(a.hr))
    assert not torch.allclose(a.hr, a.hr_unpaired)


# ---- KDE and MAP ---------------------------------------------------------------------------------------


def test_kde_integrates_to_one_and_is_higher_on_the_roll(kde):
    step = 0.05
    g = torch.arange(-12.0, 12.0 + 1e-9, step, dtype=torch.float64)
    logp = kde.grid_log_density(g, g)
    assert abs(float(logp.exp().sum()) * step**2 - 1.0) < 0.02
    on = torch.tensor([[4.0 * math.cos(10.0), 4.0 * math.sin(10.0)]], dtype=torch.float64)
    between = on * (4.0 + 0.4 * math.pi) / 4.0  # half a turn's radial gap further out
    assert float(kde.log_density(on)) > float(kde.log_density(between)) + 10


def test_kde_grid_and_fast_evaluations_agree_with_the_exact_one(kde):
    g = torch.Generator().manual_seed(4)
    points = torch.cat([sample_roll(300, g, dtype=torch.float64), 16 * torch.rand(100, 2, generator=g) - 8])
    exact = kde.log_density(points)
    assert torch.isfinite(exact).all()
    fast = kde.fast_log_density(points)
    assert float((fast - exact)[:300].abs().max()) < 0.02  # bilinear at step 0.05 on the roll
    u, v = torch.tensor([-1.0, 0.3], dtype=torch.float64), torch.tensor([0.5, 2.0, -3.0], dtype=torch.float64)
    grid = kde.grid_log_density(u, v).reshape(-1)
    pts = torch.stack(torch.meshgrid(u, v, indexing="ij"), -1).reshape(-1, 2)
    torch.testing.assert_close(grid, kde.log_density(pts), rtol=0, atol=1e-10)
    line = kde.grid_log_density(u, v, coords="line").reshape(-1)
    on_line = torch.stack([pts[:, 0] + pts[:, 1] * V[0], pts[:, 0] + pts[:, 1] * V[1]], 1)
    torch.testing.assert_close(line, kde.log_density(on_line), rtol=0, atol=1e-10)


@pytest.mark.parametrize("x", [0.5, -2.3, 3.9])
def test_brute_force_map_is_on_the_line_and_beats_every_grid_point(kde, x):
    points, logp = map_estimates(kde, torch.tensor([x], dtype=torch.float64), step=0.05)
    assert abs(float(ToyOperator()(points.double())[0, 0]) - x) < 1e-12
    best = float(kde.log_density(points))
    assert abs(best - float(logp[0])) < 1e-5  # the float32 line search reports the exact value
    t = torch.arange(float(kde.t.min()), float(kde.t.max()) + 1e-9, 0.05, dtype=torch.float64)
    along = torch.stack([x + t * V[0], x + t * V[1]], 1)
    assert best >= float(kde.log_density(along).max()) - 1e-6
    posterior = line_posterior(kde, x, torch.arange(-12, 12, 0.02))
    for key in ("mse", "mae", "map"):
        assert abs(0.5 * posterior["estimates"][key].sum() - x) < 1e-12


def test_bayes_estimators_on_a_posterior_with_a_known_answer():
    """Three equal kernels on the line of x = 0.5 at t = −3, 0, 1 (h = 0.2, well separated): the posterior
    mean is t = −2/3, the median the middle kernel's centre t = 0 (a third of the mass on each side)."""
    x, centres = 0.5, torch.tensor([-3.0, 0.0, 1.0], dtype=torch.float64)
    samples = torch.stack([x + centres * V[0], x + centres * V[1]], 1)
    kde = RollKDE(samples, 0.2)
    found = line_estimates(kde, torch.tensor([x, x]), step=0.01)
    for name, t in (("posterior_mean", -2.0 / 3.0), ("posterior_median", 0.0)):
        expected = torch.tensor([[x + t * V[0], x + t * V[1]]], dtype=torch.float64).expand(2, 2)
        torch.testing.assert_close(found[name], expected, rtol=0, atol=1e-4)
    # symmetric: mean = median = mode at the centre
    symmetric = torch.tensor([-2.0, 0.0, 2.0], dtype=torch.float64)
    sym = RollKDE(torch.stack([x + symmetric * V[0], x + symmetric * V[1]], 1), 0.8)  # overlapping: a clear mode
    found = line_estimates(sym, torch.tensor([x]), step=0.01)
    for name in ("map", "posterior_mean", "posterior_median"):
        torch.testing.assert_close(found[name], torch.tensor([[x, x]], dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("x", [0.5, -2.3, 3.9])
def test_line_estimates_agree_with_the_single_line_posterior(kde, x):
    found = line_estimates(kde, torch.tensor([x], dtype=torch.float64), step=0.005)
    posterior = line_posterior(kde, x, torch.arange(-12, 12, 0.005))
    for ours, theirs in (("posterior_mean", "mse"), ("posterior_median", "mae")):
        np.testing.assert_allclose(found[ours][0].numpy(), posterior["estimates"][theirs], atol=1e-3)
    points, logp = map_estimates(kde, torch.tensor([x], dtype=torch.float64), step=0.005)
    torch.testing.assert_close(points, found["map"])


# ---- the study ------------------------------------------------------------------------------------------


def test_study_returns_the_table_rows_and_sane_values(study):
    results, data = study
    assert list(results.columns) == ["dataset", "method", "metric", "value"]
    assert set(results["dataset"]) == {"toy"}
    wide = results.pivot(index="method", columns="metric", values="value")
    assert set(wide.index) == set(TINY.methods) | {"map", *BAYES_ROWS}
    restarts = TINY.toy.restarts
    for method in TINY.methods:
        assert wide.loc[method, ["cross_entropy", "cross_entropy_std", "cross_entropy_sem", "cross_entropy_median",
                                 "lr_mse", "lr_mse_std"]].notna().all()
        expected_sem = wide.loc[method, "cross_entropy_std"] / np.sqrt(restarts) if restarts > 1 else 0.0
        assert wide.loc[method, "cross_entropy_sem"] == pytest.approx(expected_sem)
    assert np.isnan(wide.loc["map", "lr_mse"]) and np.isfinite(wide.loc["map", "cross_entropy"])
    assert wide.loc["affgan", "lr_mse"] < 1e-10 and wide.loc["affdg", "lr_mse"] < 1e-10
    assert wide.loc["mse", "lr_mse"] > 0
    assert wide.loc["mse", "cross_entropy"] > wide.loc["map", "cross_entropy"]
    # the Bayes estimators lie on the solution lines too, so none beats the MAP (up to interpolation)
    for name in BAYES_ROWS:
        assert wide.loc["map", "cross_entropy"] <= wide.loc[name, "cross_entropy"] + 0.01
        assert np.isnan(wide.loc[name, "lr_mse"])
    per = data["per_restart"]
    assert len(per) == TINY.toy.restarts * len(TINY.methods)
    for method in TINY.methods:
        assert data["outputs"][method]["y"].shape == (TINY.toy.curve_points, 2)
    assert data["map_curve"]["y"].shape == (TINY.toy.curve_points, 2)
    assert data["score_field"]["vectors"].shape == data["score_field"]["points"].shape
    assert data["line"]["x"] == 0.5


def test_table1_sits_beside_the_papers_numbers(study):
    results, _ = study
    table = table1(results)
    assert list(table.index[:7]) == ["MAP", "MSE", "MAE", "AffGAN", "SoftGAN", "AffDG", "SoftDG"]
    assert table.loc["MAP", "paper_cross_entropy"] == 3.15
    assert table.loc["AffDG", "paper_cross_entropy"] == 3.81
    assert table.loc["SoftGAN", "paper_lr_mse"] == 8.87e-2
    assert table.loc["AffGAN", "paper_lr_mse"] == 0.0
    assert PAPER_TABLE1["mse"]["cross_entropy"] == 9.10
    for name in BAYES_ROWS:  # ours only: present, the paper's column empty
        row = table.loc[display_name(name)]
        assert np.isfinite(row["cross_entropy"]) and np.isnan(row["paper_cross_entropy"])
    assert " ± " in table.loc["MSE", "H ours"]
    assert table.loc["MSE", "cross_entropy"] == pytest.approx(
        float(results.query("method == 'mse' and metric == 'cross_entropy'")["value"].iloc[0]))
    with pytest.raises(ValueError, match="columns"):
        table1(pd.DataFrame({"method": ["mse"]}))


def test_toy_figure_writes_a_png(study, tmp_path):
    _, data = study
    path = tmp_path / "figures" / "toy.png"
    toy_figure(data, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="prior"):
        toy_figure({}, tmp_path / "bad.png")


def test_study_is_reproducible_from_its_seed(study):
    results, _ = study
    again, _ = run_toy_study(TINY, progress=False)
    pd.testing.assert_frame_equal(results, again)
    only_mse = tiny_toy(skip=["mae", "affmse", "affinit", "affgan", "softgan", "affgan_z", "affdg", "softdg", "affll"])
    other, _ = run_toy_study(settings_of(only_mse, seed=1), progress=False)
    assert set(other["method"]) == {"mse", "map", *BAYES_ROWS}
    assert not np.isclose(other.query("method == 'map'")["value"].iloc[0],
                          results.query("method == 'map'")["value"].iloc[0])


def test_runs_keep_the_params_order_when_the_settings_arrive_as_sorted_json():
    """The workflow passes the settings as JSON with sorted keys: the toy still trains and reports its
    methods in params order (seed-slot order), so its rows do not depend on how it was called."""
    import json

    only = tiny_toy(skip=["affmse", "affinit", "affgan", "softgan", "affgan_z", "affdg", "softdg", "affll"])
    resolved = json.loads(json.dumps(resolve_toy(load_params(only)), sort_keys=True))
    assert list(resolved["methods"]) == ["mae", "mse"]  # what sorting did
    results, _ = run_toy_study(ToySettings.parse(resolved), progress=False)
    assert list(dict.fromkeys(results["method"]))[:2] == ["mse", "mae"]
