"""Tests for affsr.methods: every objective's phases lower their loss; constraints and schedules.

Parametrised over every method of the repo's params.yaml (so a new method is tested automatically) and
over every objective × constraint combination (so a new objective module is too).
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import pytest
import torch

from affsr.config.training import CONSTRAINTS
from affsr.config.study import RunSettings
from affsr.params import load_params, resolve
from affsr.data.load import load_split
from affsr.methods import available_objectives, objective_class, options_class, super_resolves
from affsr.methods.base import Batch, Guide, consistency_penalty
from affsr.training.build import build_objective

REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
REPO_METHODS = load_params(REPO_PARAMS).methods
COMBOS = [(o, c) for o in available_objectives() for c in CONSTRAINTS]

# Each case is a method entry of params.yaml: the repo's own methods as they are, then every combination.
METHOD_CASES = [
    pytest.param(
        {
            "objective": m.objective,
            "constraint": m.constraint,
            "consistency_weight": m.consistency_weight,
            "options": copy.deepcopy(m.options),
        },
        id=f"params.yaml:{name}",
    )
    for name, m in REPO_METHODS.items()
] + [pytest.param({"objective": o, "constraint": c}, id=f"{o}-{c}") for o, c in COMBOS]


@pytest.fixture
def tiny(tiny_params):
    """``tiny(objective, constraint, options=None, **method_keys)`` or ``tiny(method_dict)``: RunSettings of
    that one method on the tiny params (tiny networks, 16 px data)."""

    def make(objective, constraint=None, options=None, **keys) -> RunSettings:
        method = dict(objective) if isinstance(objective, dict) else {
            "objective": objective, "constraint": constraint, "options": options or {}, **keys}
        params = copy.deepcopy(tiny_params)
        params["methods"] = {"m": method}
        return RunSettings.parse(resolve(load_params(params), "grass", "m"))

    return make


@pytest.fixture(scope="module")
def batch(tiny_data) -> Batch:
    """A fixed batch of 8 training pairs plus 8 other HR patches as the unpaired 'real' samples."""
    lr, hr = load_split(tiny_data, "train")
    return Batch(lr=lr[:8], hr=hr[:8], hr_unpaired=hr[8:16])


def _guides(settings: RunSettings, tiny) -> list[Guide]:
    """A guided objective (``GUIDED_BY``) gets one untrained, frozen network of its auxiliary objective."""
    aux = getattr(importlib.import_module(f"affsr.methods.{settings.objective}"), "GUIDED_BY", "")
    if not aux:
        return []
    (network,) = build_objective(tiny(aux, "none"), 1).networks.values()
    return [Guide(label=0.1, network=network.eval().requires_grad_(False))]


def _loss(phase, batch: Batch, progress: float) -> torch.Tensor:
    torch.manual_seed(1234)  # the same instance noise (and any other randomness) in both evaluations
    return phase.loss(batch, progress)


@pytest.mark.parametrize("method", METHOD_CASES)
def test_each_phase_step_lowers_its_loss(method, batch, tiny):
    settings = tiny(method)
    guides = _guides(settings, tiny)
    objective = build_objective(settings, channels=1, guides=guides)
    assert objective.phases, "an objective needs at least one phase"
    if super_resolves(settings.objective):
        assert set(objective.networks) >= {"generator"}
    else:  # an auxiliary run trains exactly one network (what load_guides snapshots)
        assert len(objective.networks) == 1
    assert {p.network for p in objective.phases} <= set(objective.networks)
    for net in objective.networks.values():
        net.train()
    for phase in objective.phases:
        network = objective.networks[phase.network]
        optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
        before = _loss(phase, batch, 0.0)
        assert before.ndim == 0 and torch.isfinite(before), phase.name
        optimiser.zero_grad(set_to_none=True)
        before.backward()
        grads = [p.grad for p in network.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), f"{phase.name}: no gradient reaches {phase.network}"
        optimiser.step()
        if guides:
            # A guided loss follows the guide's gradient field (e.g. a denoiser's score), which an
            # untrained guide need not make a descent direction of the logged value; the objective's own
            # tests check the step with a known guide.
            continue
        with torch.no_grad():
            after = _loss(phase, batch, 0.0)
        assert after.item() < before.item(), f"{settings.method} {phase.name}: {before.item()} → {after.item()}"


@pytest.mark.parametrize("objective", available_objectives())
def test_projected_output_is_consistent_for_random_weights(objective, batch, tiny):
    model = build_objective(tiny(objective, "projected"), 1).context.model
    with torch.no_grad():
        sr = model(batch.lr)
    rel = (torch.linalg.norm(model.op(sr) - batch.lr) / torch.linalg.norm(batch.lr)).item()
    assert sr.shape == batch.hr.shape
    assert rel < 1e-5


@pytest.mark.parametrize("constraint", ["soft", "none"])
def test_unprojected_output_is_not_consistent(constraint, batch, tiny):
    model = build_objective(tiny("pixel", constraint), 1).context.model
    with torch.no_grad():
        sr = model(batch.lr)
    rel = (torch.linalg.norm(model.op(sr) - batch.lr) / torch.linalg.norm(batch.lr)).item()
    assert rel > 1e-3


@pytest.mark.parametrize("objective", available_objectives())
@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_soft_penalty_only_for_soft(objective, constraint, batch, tiny):
    context = build_objective(tiny(objective, constraint), 1).context
    with torch.no_grad():
        sr = context.model(batch.lr)
        penalty = consistency_penalty(context, sr, batch.lr).item()
    if constraint == "soft":
        assert penalty > 0
    else:
        assert penalty == 0.0


def test_soft_penalty_scales_with_weight(batch, tiny):
    values = []
    for weight in (1.0, 3.0):
        context = build_objective(tiny("pixel", "soft", consistency_weight=weight), 1).context
        with torch.no_grad():
            values.append(consistency_penalty(context, context.model(batch.lr), batch.lr).item())
    assert values[0] > 0
    assert values[1] == pytest.approx(3 * values[0], rel=1e-5)


def test_gan_instance_noise_schedule(tiny):
    gan = build_objective(tiny("gan", "projected", {"instance_noise": 0.1, "noise_anneal": 1.0}), 1)
    assert gan.noise_std(0.0) == pytest.approx(0.1)
    assert gan.noise_std(0.5) == pytest.approx(0.05)
    assert gan.noise_std(1.0) == 0.0
    half = build_objective(tiny("gan", "projected", {"instance_noise": 0.1, "noise_anneal": 0.5}), 1)
    assert half.noise_std(0.25) == pytest.approx(0.05)
    assert half.noise_std(0.5) == 0.0 and half.noise_std(0.9) == 0.0


def test_gan_d_steps_phases(tiny):
    gan = build_objective(tiny("gan", "soft", {"d_steps": 3}), 1)
    assert [p.name for p in gan.phases] == ["discriminator"] * 3 + ["generator"]
    assert set(gan.networks) == {"generator", "discriminator"}


@pytest.mark.parametrize("options", [{"instance_noise": -0.1}, {"noise_anneal": 0.0}, {"d_steps": 0}])
def test_gan_rejects_bad_options(options, tiny):
    """Checked when params are loaded: the error names the option's dotted key."""
    (key,) = options
    with pytest.raises(ValueError, match=rf"options\.{key}: must be"):
        build_objective(tiny("gan", "projected", options), 1)


def test_pixel_rejects_bad_loss(tiny):
    with pytest.raises(ValueError, match="l1"):
        build_objective(tiny("pixel", "none", {"loss": "l3"}), 1)


def test_objective_construction_is_seeded(tiny):
    a = build_objective(tiny("gan", "projected"), 1)
    torch.manual_seed(99)  # the global seed before the call must not matter
    b = build_objective(tiny("gan", "projected"), 1)
    for name in a.networks:
        for (k, v), (_, w) in zip(a.networks[name].state_dict().items(), b.networks[name].state_dict().items()):
            assert torch.equal(v, w), f"{name}.{k}"


def test_unknown_objective_lists_available():
    with pytest.raises(ValueError) as info:
        objective_class("wgan")
    msg = str(info.value)
    assert "'wgan'" in msg
    for name in available_objectives():
        assert name in msg
    with pytest.raises(ValueError, match="available"):
        options_class("base")  # the shared helpers are not an objective


def test_available_objectives_have_options_and_objective():
    names = available_objectives()
    assert "pixel" in names and "gan" in names and "base" not in names
    for name in names:
        options_class(name)()  # every option has a default
        assert callable(objective_class(name))


def test_gan_instance_noise_anneals_to_noise_end_then_holds(tiny):
    gan = build_objective(tiny("gan", "projected", {"instance_noise": 1.0, "noise_end": 0.2, "noise_anneal": 0.5}), 1)
    assert gan.noise_std(0.0) == pytest.approx(1.0)
    assert gan.noise_std(0.25) == pytest.approx(0.6)  # halfway through the annealing: (1.0 + 0.2) / 2
    assert gan.noise_std(0.5) == pytest.approx(0.2)
    assert gan.noise_std(0.75) == pytest.approx(0.2) and gan.noise_std(1.0) == pytest.approx(0.2)
    default = build_objective(tiny("gan", "projected", {"instance_noise": 0.1}), 1)
    assert default.context.options.noise_end == 0.0 and default.noise_std(1.0) == 0.0  # image runs unchanged


@pytest.mark.parametrize("options", [{"noise_end": -0.1}, {"instance_noise": 0.1, "noise_end": 0.2}])
def test_gan_rejects_bad_noise_end(options, tiny):
    with pytest.raises(ValueError, match="noise_end"):
        build_objective(tiny("gan", "projected", options), 1)


def test_soft_penalty_is_a_per_image_laplace_nll(batch, tiny):
    """weight · Σ over an image's LR values of |x − Aŷ|, averaged over the batch: the same unit (nats per
    image) as the GAN's and the denoiser-guided objective's losses, whatever the image size."""
    from affsr.methods.base import per_value

    context = build_objective(tiny("gan", "soft", consistency_weight=2.0), 1).context
    with torch.no_grad():
        sr = context.model(batch.lr)
        expected = 2.0 * (context.model.op(sr) - batch.lr).abs().sum() / batch.lr.shape[0]
        penalty = consistency_penalty(context, sr, batch.lr)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-6)
    per_pixel = per_value(penalty, sr)  # the pixel losses' unit: per HR value
    assert per_pixel.item() == pytest.approx(penalty.item() / sr[0].numel(), rel=1e-6)
    assert per_value(penalty, sr, bits=True).item() == pytest.approx(per_pixel.item() / 0.6931471805599453)


def test_generator_skip_starts_at_the_cubic_upsampling(batch):
    """skip: the untrained generator outputs cubic(x) on A's grid (clamped), so an untrained projected
    model starts from a smooth consistent image instead of A⁺x's grid of dots."""
    from affsr.nets.generator import Generator
    from affsr.nets.sr_model import SRModel
    from affsr.operators.downsampling import Downsampling
    from affsr.operators.interpolation import cubic_upsample

    op = Downsampling.gaussian(1.0, 9, 4)
    torch.manual_seed(0)
    generator = Generator(1, 4, width=8, blocks=1, skip=True).eval()
    with torch.no_grad():
        out = generator(batch.lr)
        cubic = cubic_upsample(batch.lr, 4, boundary="replicate").clamp(Generator.SKIP_EPS, 1 - Generator.SKIP_EPS)
        assert torch.allclose(out, cubic, atol=1e-5)
        projected = SRModel(generator, op, "projected")(batch.lr)
        plain = SRModel(Generator(1, 4, width=8, blocks=1).eval(), op, "projected")(batch.lr)
    assert torch.allclose(op(projected), batch.lr, atol=1e-5)  # still exactly consistent
    # smoother than the dot grid: less power in the HR-pixel differences than without the skip
    assert projected.diff(dim=-1).square().mean() < 0.5 * plain.diff(dim=-1).square().mean()
    assert generator.tail.weight.abs().sum() == 0  # the residual starts at zero and is trained from there
