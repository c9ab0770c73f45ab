"""Tests for the AffLL density model (affsr.nets.density) and its two objectives (density_fit, likelihood: AffLL).

Tiny CPU models: width 8, two masked layers of kernel 3, two mixture components, two quadratic features.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from affsr.training import checkpoint
from affsr.config.networks import DensityConfig
from affsr.config.study import RunSettings
from affsr.params import load_params, resolve
from affsr.data.load import load_split
from affsr.nets.density import LOG_SCALE_MAX, LOG_SCALE_MIN, DensityModel, dequantize, truncated_normal_log_pdf
from affsr.evaluation.likelihood import cross_entropy
from affsr.methods import objective_class, options_class, super_resolves
from affsr.methods.base import Batch
from affsr.training.build import build_objective
from affsr.training.checkpoint import load_guides
from affsr.training.run import train

LL = "likelihood_guided"  # the AffLL objective = its module name, affsr/methods/likelihood_guided.py

TINY = {"width": 8, "layers": 2, "kernel": 3, "first_kernel": 3, "components": 2, "features": 2}


def tiny_model(channels: int = 1, seed: int = 0, **overrides) -> DensityModel:
    torch.manual_seed(seed)
    return DensityModel(channels, DensityConfig(**{**TINY, **overrides}))


def _raster(h: int, w: int) -> list[tuple[int, int]]:
    return [(r, s) for r in range(h) for s in range(w)]


def _grad_map(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|∂ output / ∂ y| summed over channels: (H, W)."""
    (grad,) = torch.autograd.grad(output, y, retain_graph=True, allow_unused=True)
    return torch.zeros(y.shape[2:]) if grad is None else grad[0].abs().sum(0)


def _dependence(model: DensityModel, shape=(1, 1, 5, 5)) -> tuple[float, float, float]:
    """Over every pixel j: the largest |∂ head_j / ∂ y_k| for k ≥ j (k = j: not the colour means), the same of log p(y_j|y_<j) for k > j,
    and the smallest over j > 0 of max_{k<j} |∂ head_j / ∂ y_k| (must be > 0: the past is used)."""
    torch.manual_seed(1)
    y = torch.rand(*shape, requires_grad=True)
    params = model.conditionals(y)
    h = model.features(y)
    log_p = model.log_prob_pixels(y)
    order = _raster(*shape[2:])
    head_future, logp_future, past_min = 0.0, 0.0, math.inf
    for index, (r, s) in enumerate(order):
        head = sum(p[0, ..., r, s].sum() for p in params.values())
        g_head = _grad_map(head, y)
        # Colour means may use the earlier channels of their own pixel (tested below); all else may not.
        g_own = _grad_map(h[0, :, r, s].sum() + params["log_weights"][0, :, r, s].sum()
                          + params["log_scales"][0, ..., r, s].sum(), y)
        g_logp = _grad_map(log_p[0, r, s], y)
        later = torch.zeros(shape[2:], dtype=torch.bool)
        for rr, ss in order[index + 1:]:
            later[rr, ss] = True
        own = g_own[r, s].item() if y.shape[1] > 1 else g_head[r, s].item()
        head_future = max(head_future, g_head[later].max().item() if later.any() else 0.0, own)
        logp_future = max(logp_future, g_logp[later].max().item() if later.any() else 0.0)
        if index > 0:
            earlier = ~later
            earlier[r, s] = False
            past_min = min(past_min, g_head[earlier].max().item())
    return head_future, logp_future, past_min


# ---- the density model -------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_conditionals_are_causal_in_raster_order(channels):
    head_future, logp_future, past_min = _dependence(tiny_model(channels), (1, channels, 5, 5))
    assert head_future == 0.0, "the head of pixel j depends on y_j or a later pixel"
    assert logp_future == 0.0, "log p(y_j | y_<j) depends on a later pixel"
    assert past_min > 0.0, "some pixel's conditional ignores all earlier pixels"


def test_causality_check_detects_an_unmasked_model():
    model = tiny_model()
    for module in model.modules():
        if hasattr(module, "mask"):
            module.mask.fill_(1.0)  # a plain conv: sees the future
    head_future, logp_future, _ = _dependence(model)
    assert head_future > 0 and logp_future > 0


def test_colour_channels_are_chained_within_a_pixel():
    model = tiny_model(3)
    y = torch.rand(1, 3, 3, 3, requires_grad=True)
    means = model.conditionals(y)["means"]  # (B, K, C, H, W)
    for c in range(3):
        (grad,) = torch.autograd.grad(means[0, :, c, 1, 1].sum(), y, retain_graph=True)
        own = grad[0, :, 1, 1].abs()
        assert torch.all(own[c:] == 0), f"mean of channel {c} depends on channel ≥ {c} of its own pixel"
        if c > 0:
            assert torch.all(own[:c] > 0), f"mean of channel {c} ignores earlier channels of its pixel"


@pytest.mark.parametrize("channels", [1, 3])
def test_head_is_a_proper_mixture(channels):
    params = tiny_model(channels).conditionals(torch.rand(4, channels, 6, 6))
    weights = params["log_weights"].exp()
    assert torch.all(weights > 0)
    assert torch.allclose(weights.sum(1), torch.ones(4, 6, 6), atol=1e-6)
    scales = params["log_scales"]
    assert torch.all(scales >= LOG_SCALE_MIN) and torch.all(scales <= LOG_SCALE_MAX)
    assert params["means"].shape == scales.shape == (4, 2, channels, 6, 6)


@pytest.mark.parametrize("pixel", [(1, 1), (2, 2)])
# σ ≈ 0.1 (init) centred, σ ≈ 0.1 near the edge 0 (much mass outside [0, 1] before truncation), σ ≈ 0.004
@pytest.mark.parametrize("log_scale_bias, mean_bias", [(0.35, 0.5), (0.35, 0.02), (-3.0, 0.5)])
def test_grey_conditional_integrates_to_one_on_the_unit_interval(pixel, log_scale_bias, mean_bias):
    model = tiny_model()
    with torch.no_grad():
        model.log_scale.bias.fill_(log_scale_bias)
        model.mean.bias.fill_(mean_bias)
    n = 40_000
    grid = (torch.arange(n, dtype=torch.float64) + 0.5) / n  # midpoint rule on [0, 1]
    base = torch.rand(1, 1, 3, 3).repeat(n, 1, 1, 1)
    base[:, 0, pixel[0], pixel[1]] = grid.float()
    with torch.no_grad():
        density = model.log_prob_pixels(base)[:, pixel[0], pixel[1]].double().exp()
    assert density.mean().item() == pytest.approx(1.0, abs=2e-3)


def test_colour_conditional_integrates_to_one_on_the_unit_cube():
    model = tiny_model(3)
    with torch.no_grad():
        model.mean.bias.fill_(0.05)  # much of each Gaussian's mass is below 0 before truncation
    n = 60
    axis = (torch.arange(n) + 0.5) / n
    grid = torch.cartesian_prod(axis, axis, axis)  # (n³, 3)
    images = torch.rand(1, 3, 2, 2).repeat(len(grid), 1, 1, 1)
    images[:, :, 1, 0] = grid
    with torch.no_grad():
        density = model.log_prob_pixels(images)[:, 1, 0].double().exp()
    assert density.mean().item() == pytest.approx(1.0, abs=1e-2)


def test_truncated_normal_matches_closed_form_and_integrates_to_one():
    n = 200_000
    y = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    for mean, log_scale in [(0.3, -2.0), (-0.4, -1.0), (1.7, -0.5), (0.5, 1.0), (-3.0, -2.5)]:
        m, s = torch.tensor(mean, dtype=torch.float64), torch.tensor(log_scale, dtype=torch.float64)
        mass = truncated_normal_log_pdf(y, m, s).exp().mean().item()
        assert mass == pytest.approx(1.0, abs=1e-4), (mean, log_scale)
    # inside the range, an untruncated Gaussian's density is higher by exactly 1/(mass on [0, 1])
    m, s = torch.tensor(0.5), torch.tensor(-3.0)  # σ = 0.05: all mass inside [0, 1]
    plain = torch.distributions.Normal(m, s.exp()).log_prob(torch.tensor(0.52))
    assert truncated_normal_log_pdf(torch.tensor(0.52), m, s).item() == pytest.approx(plain.item(), abs=1e-5)


def test_log_prob_is_differentiable_in_the_input():
    model = tiny_model().double()
    y = torch.rand(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model.log_prob, (y,), eps=1e-6, atol=1e-5)
    y32 = torch.rand(2, 1, 8, 8, requires_grad=True)
    model32 = tiny_model()
    model32.log_prob(y32).sum().backward()
    assert torch.isfinite(y32.grad).all() and (y32.grad != 0).any()
    # out of [0, 1] (projected SR outputs can be): still finite, with gradients
    y_out = (torch.rand(2, 1, 8, 8) * 1.4 - 0.2).requires_grad_()
    model32.log_prob(y_out).sum().backward()
    assert torch.isfinite(y_out.grad).all()


def test_log_prob_shapes_and_per_pixel_sum():
    model = tiny_model(3)
    y = torch.rand(5, 3, 4, 6)
    assert model.log_prob_pixels(y).shape == (5, 4, 6)
    assert model.log_prob(y).shape == (5,)
    assert torch.allclose(model(y), model.log_prob_pixels(y).sum((1, 2)))
    with pytest.raises(ValueError, match="expected images"):
        model.log_prob(torch.rand(5, 1, 4, 6))


def test_bits_conventions():
    model = tiny_model(3)
    y = torch.rand(4, 3, 5, 5)
    dims = 3 * 5 * 5
    ll = model.log_likelihood_bits(y)
    assert torch.allclose(ll, model.log_prob(y) / (dims * math.log(2)) - 8, atol=1e-5)
    assert torch.equal(model.cross_entropy_bits(y), -ll)
    assert torch.equal(model.bits_per_dim(y), model.cross_entropy_bits(y))
    # the uniform density on [0, 1]^D (log p = 0) is −8 bits/dim on the 8-bit scale
    model.log_prob = lambda images: images.new_zeros(len(images))
    assert torch.all(model.log_likelihood_bits(y) == -8.0)
    assert torch.all(model.cross_entropy_bits(y) == 8.0)


def test_nearly_flat_model_scores_about_minus_eight_bits():
    model = tiny_model()
    with torch.no_grad():
        for conv in (model.mean, model.log_scale):
            conv.weight.zero_()
        model.log_scale.bias.fill_(30.0)  # σ = e^1 ≈ 2.7 centred on 0.5: close to uniform on [0, 1]
    bits = model.log_likelihood_bits(torch.rand(3, 1, 6, 6))
    assert torch.all((bits - (-8.0)).abs() < 0.1)


def test_dequantize_puts_each_level_in_its_bin():
    levels = torch.arange(256, dtype=torch.float32).repeat(40)
    y = (levels / 255.0).view(-1, 1, 16, 16)
    out = dequantize(y, torch.Generator().manual_seed(0))
    assert out.shape == y.shape and out.dtype == y.dtype
    assert torch.equal(torch.floor(out * 256).flatten(), levels)
    assert out.min() >= 0 and out.max() < 1
    noise = (out * 256 - levels.view_as(out))
    assert noise.mean().item() == pytest.approx(0.5, abs=0.02)
    assert not torch.equal(dequantize(y), dequantize(y))  # fresh noise each call


def test_cross_entropy_function(tiny_data):
    _, hr = load_split(tiny_data, "val")
    model = tiny_model()
    value = cross_entropy(model, hr)
    assert isinstance(value, float)
    assert value == pytest.approx(model.cross_entropy_bits(hr).mean().item(), abs=1e-4)
    assert cross_entropy(model, hr, batch_size=3) == pytest.approx(value, abs=1e-4)
    noisy = cross_entropy(model, hr, dequantize=True, seed=0)
    assert noisy != value and abs(noisy - value) < 0.5
    assert cross_entropy(model, hr, dequantize=True, seed=0) == noisy
    assert cross_entropy(model, hr, dequantize=True, seed=1) != noisy


@pytest.mark.parametrize("key, value", [("kernel", 4), ("first_kernel", 2), ("layers", 0), ("features", -1)])
def test_bad_config_is_rejected(key, value):
    with pytest.raises(ValueError, match=key):
        tiny_model(**{key: value})


def test_features_zero_means_plain_softmax_gating():
    model = tiny_model(features=0)
    assert model.quadratic is None
    assert model.log_prob(torch.rand(2, 1, 4, 4)).shape == (2,)


# ---- the objectives ----------------------------------------------------------------------------------


def _params(tiny_params, snapshots: int = 3, **affll) -> dict:
    params = copy.deepcopy(tiny_params)
    params["density"] = dict(TINY)
    params["methods"] = {
        "density": {"objective": "density_fit", "constraint": "none", "options": {"snapshots": snapshots},
                    "train": {"lr": 0.01}},
        "affll": {"objective": LL, "constraint": "projected", "guide": "density", **affll},
    }
    return params


def test_objective_declarations():
    assert super_resolves("density_fit") is False
    assert super_resolves(LL) is True
    assert options_class("density_fit")() == options_class("density_fit")(snapshots=4, dequantize=True)
    options_class(LL)()
    import affsr.methods.likelihood_guided as likelihood

    assert likelihood.GUIDED_BY == "density_fit"


def test_density_fit_networks_snapshots_and_loss(tiny_params, make_settings, tiny_data):
    params = _params(tiny_params, snapshots=4)
    objective = build_objective(make_settings("density", params), channels=1)
    assert set(objective.networks) == {"density"} and isinstance(objective.networks["density"], DensityModel)
    assert [p.name for p in objective.phases] == ["nll"] and objective.phases[0].network == "density"
    assert objective.snapshot_points == [0.25, 0.5, 0.75, 1.0]
    assert objective.snapshot_label(0.3) == 0.3
    _, hr = load_split(tiny_data, "train")
    batch = Batch(lr=hr[:4, :, ::4, ::4], hr=hr[:4], hr_unpaired=hr[4:8])
    density = objective.networks["density"]
    loss = objective.phases[0].loss(batch, 0.0)
    assert loss.ndim == 0
    # dequantised: close to, but not exactly, the bits/dim of the raw levels
    raw = density.cross_entropy_bits(batch.hr).mean()
    assert loss.item() != raw.item() and abs(loss.item() - raw.item()) < 0.5
    params["methods"]["density"]["options"]["dequantize"] = False
    plain = build_objective(make_settings("density", params), channels=1)
    assert torch.equal(plain.phases[0].loss(batch, 0.0), plain.networks["density"].cross_entropy_bits(hr[:4]).mean())
    with pytest.raises(ValueError, match="snapshots"):
        params["methods"]["density"]["options"]["snapshots"] = 0
        build_objective(make_settings("density", params), channels=1)


@pytest.fixture(scope="module")
def trained_density(tmp_path_factory, tiny_data):
    """A density_fit run on the tiny data (40 steps, 3 snapshots): (settings of the AffLL method it
    guides, its own settings, its checkpoint, its log)."""
    from conftest import tiny_params_dict

    params = _params(tiny_params_dict(), snapshots=3)
    params["train"].update(steps=40, log_every=10)
    settings = RunSettings.parse(resolve(load_params(params), "grass", "density"))
    out = tmp_path_factory.mktemp("density")
    log = train(settings, tiny_data, out / "model.pt", out / "log.csv", progress=False)
    affll = RunSettings.parse(resolve(load_params(params), "grass", "affll"))
    return affll, settings, out / "model.pt", log


def test_density_fit_training_lowers_bits_and_keeps_labelled_snapshots(trained_density, tiny_data):
    affll, settings, ckpt, log = trained_density
    assert log["loss_nll"].iloc[-1] < log["loss_nll"].iloc[0] - 0.2
    untrained = build_objective(settings, channels=1).networks["density"]
    _, hr = load_split(tiny_data, "train")
    guides = load_guides(ckpt, affll, channels=1)
    before = cross_entropy(untrained, hr, dequantize=True)
    after = cross_entropy(guides[-1].network, hr, dequantize=True)
    assert after < before - 0.2, (before, after)

    state, _ = checkpoint.load(ckpt)
    labels = [snap["label"] for snap in state["snapshots"]]
    assert len(labels) == 3
    assert all(0 < a < b <= 1 for a, b in zip(labels, labels[1:]))
    assert [g.label for g in guides] == labels
    for guide in guides:
        assert isinstance(guide.network, DensityModel)
        assert not any(p.requires_grad for p in guide.network.parameters())
    # the last snapshot is the final model
    for name, tensor in state["networks"]["density"].items():
        assert torch.equal(tensor, guides[-1].network.state_dict()[name])


def test_likelihood_guided_step_lowers_its_loss_and_leaves_the_density_alone(trained_density, tiny_data):
    affll, _, ckpt, _ = trained_density
    guides = load_guides(ckpt, affll, channels=1)
    objective = build_objective(affll, channels=1, guides=guides)
    assert set(objective.networks) == {"generator"} and [p.name for p in objective.phases] == ["generator"]
    lr, hr = load_split(tiny_data, "train")
    batch = Batch(lr=lr[:8], hr=hr[:8], hr_unpaired=hr[8:16])
    generator = objective.networks["generator"].train()
    phase = objective.phases[0]
    density_before = {k: v.clone() for k, v in guides[-1].network.state_dict().items()}

    loss = phase.loss(batch, 0.99)  # the last (best) snapshot
    with torch.no_grad():
        expected = guides[-1].network.cross_entropy_bits(objective.context.model(batch.lr)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    optimiser = torch.optim.Adam(generator.parameters(), lr=1e-3)
    optimiser.zero_grad()
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
    assert all(p.grad is None for g in guides for p in g.network.parameters())
    optimiser.step()
    with torch.no_grad():
        after = phase.loss(batch, 0.99)
    assert after.item() < loss.item()
    for k, v in guides[-1].network.state_dict().items():
        assert torch.equal(v, density_before[k])
    assert objective.snapshot_label(0.0) == guides[0].label and objective.snapshot_label(0.99) == guides[-1].label
    # the curriculum: early in training the first (worst) snapshot is the guide
    with torch.no_grad():
        early = phase.loss(batch, 0.0)
        first = guides[0].network.cross_entropy_bits(objective.context.model(batch.lr)).mean()
    assert early.item() == pytest.approx(first.item(), rel=1e-5)


def test_likelihood_guided_without_guides_says_so(tiny_params, make_settings, tiny_data):
    objective = build_objective(make_settings("affll", _params(tiny_params)), channels=1)
    lr, hr = load_split(tiny_data, "train")
    with pytest.raises(ValueError, match="guide"):
        objective.phases[0].loss(Batch(lr=lr[:2], hr=hr[:2], hr_unpaired=hr[:2]), 0.0)
    assert callable(objective_class(LL))


def test_scoring_chunks_fit_the_memory_bound_and_do_not_change_the_score():
    from affsr.config.networks import DensityConfig
    from affsr.evaluation.likelihood import SCORING_BYTES, chunk_size, cross_entropy
    from affsr.nets.density import DensityModel

    paper = DensityModel(3, DensityConfig(width=64, layers=4, kernel=5, first_kernel=7, components=32, features=32))
    n = chunk_size(paper, 128, 128)  # ImageNet at paper scale: 256 at once would need ≈ 51 GB
    assert 1 <= n < 256
    assert n * 4 * 128 * 128 * (2 * 64 + 32 * 10 + 32) * 7 <= SCORING_BYTES
    small = DensityModel(1, DensityConfig(width=8, layers=2, kernel=3, first_kernel=3, components=2, features=2))
    assert chunk_size(small, 32, 32) == 256  # the demo's sizes: one chunk of 256, as before
    images = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    whole = cross_entropy(small, images, dequantize=True)
    assert abs(cross_entropy(small, images, batch_size=3, dequantize=True) - whole) < 1e-5
