"""Tests for affsr.nets: the generator f_θ, the discriminator, the denoiser, the SR model's constraint and
the auxiliary networks sized from a run's settings. Tiny networks on random tensors: each test ≪ 1 s."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from affsr.nets.density import DensityModel
from affsr.nets.denoiser import Denoiser
from affsr.nets.discriminator import Discriminator
from affsr.nets.generator import Generator, ResidualBlock
from affsr.training.build import ImageNetworks
from affsr.nets.sr_model import SRModel
from affsr.operators.downsampling import Downsampling
from affsr.operators.interpolation import cubic_upsample, grid_offset
from conftest import operator_of

GAUSS = Downsampling.gaussian(1.0, 9, 4)


def _consistency_error(op: Downsampling, sr: torch.Tensor, lr: torch.Tensor) -> float:
    """‖A ŷ − x‖ / ‖x‖."""
    return float(torch.linalg.norm(op(sr) - lr) / torch.linalg.norm(lr))


def _lr(op: Downsampling, batch: int, channels: int, hr: int, dtype=torch.float32) -> torch.Tensor:
    """x = A y for random y in [0, 1]: an LR input in the range of A."""
    return op(torch.rand(batch, channels, hr, hr, dtype=dtype))


# ---- the generator ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "colour"])
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("skip", [False, True], ids=["plain", "skip"])
def test_generator_maps_lr_to_hr_of_the_scale_inside_0_1(channels, scale, skip):
    generator = Generator(channels, scale, width=8, blocks=1, skip=skip)
    x = torch.rand(2, channels, 5, 6)
    y = generator(x)
    assert y.shape == (2, channels, 5 * scale, 6 * scale)
    assert y.dtype == x.dtype and bool(((y > 0) & (y < 1)).all())  # a sigmoid output


@pytest.mark.parametrize("scale, stages", [(2, [2]), (4, [2, 2]), (8, [2, 2, 2]), (3, [3]), (6, [6])])
def test_upsampling_is_x2_pixel_shuffles_for_powers_of_two_else_one_stage(scale, stages):
    generator = Generator(1, scale, width=4, blocks=0)
    shuffles = [m.upscale_factor for m in generator.up if isinstance(m, nn.PixelShuffle)]
    assert shuffles == stages


@pytest.mark.parametrize("blocks", [0, 1, 3])
def test_generator_has_the_configured_width_and_blocks(blocks):
    generator = Generator(3, 4, width=12, blocks=blocks, noise=2)
    assert sum(isinstance(m, ResidualBlock) for m in generator.modules()) == blocks
    assert generator.head[0].in_channels == 3 + 2 and generator.head[0].out_channels == 12  # noise maps
    assert generator.tail.out_channels == 3


def test_residual_block_keeps_the_shape_and_is_the_identity_with_a_zero_last_batch_norm():
    block = ResidualBlock(6)
    h = torch.randn(2, 6, 5, 5)
    assert block(h).shape == h.shape
    nn.init.zeros_(block.body[-1].weight)  # BN γ = 0, β = 0: the branch outputs 0
    nn.init.zeros_(block.body[-1].bias)
    assert torch.equal(block(h), h)


def test_noise_maps_make_each_call_a_new_draw_and_the_seed_repeats_it():
    generator = Generator(1, 4, width=8, blocks=1, noise=2).eval()
    x = torch.rand(3, 1, 4, 4)
    with torch.no_grad():
        torch.manual_seed(5)
        a = generator(x)
        b = generator(x)
        torch.manual_seed(5)
        again = generator(x)
    assert (a - b).abs().max() > 1e-4  # fresh noise on every call
    assert torch.equal(a, again)  # drawn from torch's global generator: the seed repeats it
    with torch.no_grad():
        plain = Generator(1, 4, width=8, blocks=1).eval()
        assert torch.equal(plain(x), plain(x))  # noise 0: deterministic


def test_noise_draws_are_per_image_at_lr_size():
    """The same LR image twice in one batch gets two different outputs: the noise is per image."""
    generator = Generator(1, 4, width=8, blocks=1, noise=1).eval()
    x = torch.rand(1, 1, 4, 4).repeat(2, 1, 1, 1)
    seen = {}
    generator.head.register_forward_hook(lambda m, inp, out: seen.update(input=inp[0]))
    with torch.no_grad():
        y = generator(x)
    assert seen["input"].shape == (2, 2, 4, 4)  # x and one LR-size noise map
    assert torch.equal(seen["input"][:, :1], x)
    assert (y[0] - y[1]).abs().max() > 1e-4


def test_negative_noise_is_an_error():
    with pytest.raises(ValueError, match="noise must be ≥ 0 maps, got -1"):
        Generator(1, 4, noise=-1)


@pytest.mark.parametrize("op", [GAUSS, operator_of("box", scale=4)], ids=["gaussian", "box"])
def test_skip_starts_exactly_at_the_clamped_cubic_upsampling_on_as_grid(op):
    """At init the residual is zero: f(x) = cubic(x) on A's grid (offset: (s − 1)/2 for the box),
    replicate boundary, clamped to [ε, 1 − ε] — whatever the random weights of the rest."""
    offset = grid_offset(op)
    generator = Generator(3, 4, width=8, blocks=2, skip=True, offset=offset).eval()
    assert generator.offset == offset
    assert generator.tail.weight.abs().sum() == 0 and generator.tail.bias.abs().sum() == 0
    x = torch.rand(2, 3, 5, 5)
    with torch.no_grad():
        y = generator(x)
    eps = Generator.SKIP_EPS
    cubic = cubic_upsample(x, 4, offset, boundary="replicate").clamp(eps, 1 - eps)
    torch.testing.assert_close(y, cubic, rtol=0, atol=1e-5)
    if offset != (0.0, 0.0):  # the offset is used: the grid-0 cubic is a different image
        assert (cubic - cubic_upsample(x, 4, boundary="replicate").clamp(eps, 1 - eps)).abs().max() > 1e-3


def test_skip_clamps_saturated_inputs_to_half_an_8_bit_level():
    generator = Generator(1, 4, width=4, blocks=1, skip=True).eval()
    with torch.no_grad():
        white, black = generator(torch.ones(1, 1, 4, 4)), generator(torch.zeros(1, 1, 4, 4))
    eps = Generator.SKIP_EPS
    assert eps == 1 / 512
    torch.testing.assert_close(white, torch.full_like(white, 1 - eps), rtol=0, atol=1e-6)
    torch.testing.assert_close(black, torch.full_like(black, eps), rtol=0, atol=1e-6)  # finite, no logit(0)


def test_skip_does_not_wrap_around_the_tile_edges():
    """Replicate padding: changing the right-most LR column leaves the left-most HR columns alone (a
    circular skip would wrap it around to the other side of the tile)."""
    generator = Generator(1, 4, width=4, blocks=1, skip=True).eval()
    x = torch.full((1, 1, 8, 8), 0.5)
    bright = x.clone()
    bright[..., -1] = 1.0
    with torch.no_grad():
        a, b = generator(x), generator(bright)
    assert torch.equal(a[..., :4], b[..., :4])
    assert (a[..., -4:] - b[..., -4:]).abs().max() > 0.1
    circular = cubic_upsample(bright, 4, boundary="circular")
    assert (circular[..., :2] - 0.5).abs().max() > 1e-3  # what the replicate boundary avoids


def test_skip_residual_is_trained_from_zero():
    """The tail gets a gradient at init, so training moves f away from the cubic start."""
    generator = Generator(1, 4, width=4, blocks=1, skip=True)
    x = torch.rand(2, 1, 4, 4)
    generator(x).square().mean().backward()
    assert generator.tail.weight.grad.abs().sum() > 0 and generator.tail.bias.grad.abs().sum() > 0


# ---- the SR model and its constraint ----------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "colour"])
@pytest.mark.parametrize("constraint", ["projected", "soft", "none"])
def test_sr_model_output_shape(channels, constraint):
    model = SRModel(Generator(channels, 4, width=8, blocks=1), GAUSS, constraint)
    assert model(_lr(GAUSS, 2, channels, 16)).shape == (2, channels, 16, 16)


@pytest.mark.parametrize("op", [GAUSS, operator_of("box", scale=4), Downsampling.gaussian(0.8, 5, 2)],
                         ids=["gauss9-x4", "box-x4", "gauss5-x2"])
@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "colour"])
@pytest.mark.parametrize("skip", [False, True], ids=["plain", "skip"])
def test_projected_output_is_consistent_to_round_off(op, channels, skip):
    """Eq. 7: A ŷ = x for any weights — here random ones, in training mode and in eval mode."""
    model = SRModel(Generator(channels, op.scale, width=8, blocks=1, skip=skip, offset=grid_offset(op)), op,
                    "projected")
    x = _lr(op, 3, channels, 8 * op.scale)
    for mode in (model.train, model.eval):
        mode()
        with torch.no_grad():
            sr = model(x)
        assert sr.shape == (3, channels, 8 * op.scale, 8 * op.scale)
        assert _consistency_error(op, sr, x) < 1e-5  # float32 round-off


def test_projected_output_is_consistent_to_float64_round_off():
    model = SRModel(Generator(1, 4, width=8, blocks=1), GAUSS, "projected").double()
    x = _lr(GAUSS, 2, 1, 16, dtype=torch.float64)
    with torch.no_grad():
        assert _consistency_error(GAUSS, model(x), x) < 1e-12


@pytest.mark.parametrize("constraint", ["soft", "none"])
def test_soft_and_none_output_the_generator_as_is_and_are_not_consistent(constraint):
    torch.manual_seed(0)
    generator = Generator(1, 4, width=8, blocks=1).eval()
    model = SRModel(generator, GAUSS, constraint).eval()
    x = _lr(GAUSS, 2, 1, 16)
    with torch.no_grad():
        sr = model(x)
        assert torch.equal(sr, generator(x))
    assert _consistency_error(GAUSS, sr, x) > 1e-2


def test_projection_changes_only_what_a_cannot_see():
    """ŷ = f + A⁺(x − A f): the difference to f lies in the row space of A (A⁺A fixes it)."""
    generator = Generator(1, 4, width=8, blocks=1).eval()
    model = SRModel(generator, GAUSS, "projected")
    x = _lr(GAUSS, 2, 1, 16).double()
    model.double()
    with torch.no_grad():
        delta = model(x) - generator(x)
    torch.testing.assert_close(GAUSS.pinv(GAUSS(delta)), delta, rtol=0, atol=1e-10)


def test_projected_model_passes_gradients_to_the_generator():
    model = SRModel(Generator(1, 4, width=8, blocks=1), GAUSS, "projected")
    model(_lr(GAUSS, 2, 1, 16)).square().mean().backward()
    grads = [p.grad for p in model.generator.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert list(model.projection.parameters()) == []  # the projection has nothing to train


def test_unknown_constraint_is_an_error_naming_it():
    with pytest.raises(ValueError, match="constraint must be one of projected, projected_box, soft, none, got 'hard'"):
        SRModel(Generator(1, 4, width=4, blocks=0), GAUSS, "hard")


# ---- discriminator and denoiser -----------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "colour"])
@pytest.mark.parametrize("size", [16, 24, 40])
def test_discriminator_gives_one_logit_per_image_of_any_size(channels, size):
    discriminator = Discriminator(channels, [4, 8, 8])
    logits = discriminator(torch.rand(3, channels, size, size))
    assert logits.shape == (3,) and torch.isfinite(logits).all()


def test_discriminator_layers_follow_the_widths():
    """One stride-2 3×3 conv + LeakyReLU(0.2) per width, batch norm after every conv but the first."""
    widths = [4, 8, 16, 32]
    d = Discriminator(3, widths)
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == widths and convs[0].in_channels == 3
    assert all(c.stride == (2, 2) and c.kernel_size == (3, 3) for c in convs)
    assert [c.bias is not None for c in convs] == [True, False, False, False]
    assert [m.num_features for m in d.features if isinstance(m, nn.BatchNorm2d)] == widths[1:]
    assert all(m.negative_slope == 0.2 for m in d.features if isinstance(m, nn.LeakyReLU))
    assert d.head.in_features == widths[-1] and d.head.out_features == 1


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "colour"])
def test_denoiser_keeps_the_shape_and_has_the_configured_depth_and_width(channels):
    denoiser = Denoiser(channels, width=6, depth=3)
    convs = [m for m in denoiser.residual if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 and [c.out_channels for c in convs] == [6, 6, channels]
    assert all(c.padding_mode == "replicate" for c in convs)
    y = torch.rand(2, channels, 12, 12)
    assert denoiser(y).shape == y.shape


def test_denoiser_is_residual():
    """D(ỹ) = ỹ + r(ỹ): with the last layer at zero it is the identity, so (D(ỹ) − ỹ)/σ² is r/σ²."""
    denoiser = Denoiser(1, width=4, depth=2)
    nn.init.zeros_(denoiser.residual[-1].weight)
    nn.init.zeros_(denoiser.residual[-1].bias)
    y = torch.rand(2, 1, 8, 8)
    assert torch.equal(denoiser(y), y)


def test_denoiser_sees_no_dark_frame_at_the_border():
    """Replicate padding: on a constant image every pixel gets the same output (zero padding would make
    the border differ)."""
    denoiser = Denoiser(1, width=4, depth=3)
    with torch.no_grad():
        out = denoiser(torch.full((1, 1, 8, 8), 0.7))
    assert (out - out[0, 0, 4, 4]).abs().max() < 1e-6


# ---- the auxiliary networks of a run ------------------------------------------------------------------------


@pytest.fixture
def sized_settings(make_settings, tiny_params):
    """Run settings with small, distinctive sizes for every auxiliary network."""
    tiny_params["discriminator"] = {"widths": [4, 6, 10]}
    tiny_params["denoiser"] = {"width": 5, "depth": 3}
    tiny_params["density"] = {"width": 6, "layers": 2, "kernel": 3, "first_kernel": 5, "components": 3,
                              "features": 2}
    return make_settings("affgan", params=tiny_params)


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "colour"])
def test_image_networks_are_sized_from_the_settings_and_run_on_a_batch(sized_settings, channels):
    nets = ImageNetworks(sized_settings, channels)
    hr = torch.rand(4, channels, 16, 16)

    discriminator = nets.discriminator()
    assert isinstance(discriminator, Discriminator)
    assert [m.out_channels for m in discriminator.features if isinstance(m, nn.Conv2d)] == [4, 6, 10]
    assert discriminator(hr).shape == (4,)

    denoiser = nets.denoiser()
    assert isinstance(denoiser, Denoiser)
    assert [m.out_channels for m in denoiser.residual if isinstance(m, nn.Conv2d)] == [5, 5, channels]
    assert denoiser(hr).shape == hr.shape

    density = nets.density()
    assert isinstance(density, DensityModel) and density.channels == channels
    assert density.components == 3 and density.n_features == 2
    assert density.first.out_channels == 6 and density.first.kernel_size == (5, 5)
    assert len(density.body) == 1 and density.body[0].kernel_size == (3, 3)
    log_p = density(hr)
    assert log_p.shape == (4,) and torch.isfinite(log_p).all()


def test_image_networks_are_new_networks_on_every_call(sized_settings):
    nets = ImageNetworks(sized_settings, 1)
    assert nets.discriminator() is not nets.discriminator()
    assert nets.denoiser() is not nets.denoiser()


def test_the_resize_upsampler_treats_every_hr_pixel_alike():
    """Nearest-neighbour ×2 then a conv: the same kernels at every HR position, so a constant feature map
    upsamples to a constant image away from the border (a sub-pixel conv's s² positions differ)."""
    from affsr.nets.generator import _upsampler

    torch.manual_seed(0)
    flat = torch.ones(1, 8, 6, 6)
    inner = _upsampler(8, 4, "resize")(flat)[..., 4:-4, 4:-4]
    assert torch.allclose(inner, inner[..., :1, :1].expand_as(inner))
    shuffled = _upsampler(8, 4, "shuffle")(flat)[..., 4:-4, 4:-4]
    assert not torch.allclose(shuffled, shuffled[..., :1, :1].expand_as(shuffled))
    with pytest.raises(ValueError, match="upsampler must be one of"):
        _upsampler(8, 2, "bilinear")
