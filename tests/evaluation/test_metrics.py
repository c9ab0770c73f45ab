"""The per-image metrics (consistency, PSNR/SSIM conventions), the reference outputs, and the metric table."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from affsr.evaluation.consistency import LR_PSNR_CAP, lr_mse, lr_psnr, lr_rel
from affsr.evaluation.metrics import BY_NAME, METRICS, NEEDS, Metric, Scored, compute_metrics
from affsr.evaluation.references import bicubic, reference_outputs
from affsr.evaluation.distortion import psnr, ssim
from affsr.operators.downsampling import Downsampling
from conftest import operator_of


@pytest.fixture(scope="module")
def op() -> Downsampling:
    return Downsampling.gaussian(sigma=1.0, size=9, scale=4)


@pytest.fixture(scope="module")
def batch(op):
    """(lr float32 (4,3,8,8), hr float32 (4,3,32,32)) with lr = A hr, like a stored dataset."""
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(4, 3, 32, 32, generator=g, dtype=torch.float64)
    hr = torch.round(hr * 255) / 255
    return op(hr).to(torch.float32), hr.to(torch.float32)


# ---- consistency ----------------------------------------------------------------------------------------


def test_lr_mse_of_pinv_and_projected_outputs_is_zero(op, batch):
    lr, _ = batch
    assert lr_mse(reference_outputs("pinv", lr, op), lr, op) < 1e-12
    assert lr_mse(op.pinv(lr), lr, op) < 1e-12  # float32 A⁺x: only float32 round-off remains
    # Any f projected with A⁺: g = f + A⁺(x − A f) is consistent (Eq. 7).
    f = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g = f + op.pinv(lr.double() - op(f))
    assert lr_mse(g, lr, op) < 1e-12
    assert lr_rel(g, lr, op) < 1e-6
    # The unprojected f is not.
    assert lr_mse(f, lr, op) > 1e-3


def test_lr_mse_of_perturbed_output_has_known_value(op, batch):
    lr, _ = batch
    sr = reference_outputs("pinv", lr, op)
    # The Gaussian kernel sums to 1, so A(ŷ + c) = Aŷ + c: the error is c² exactly (up to round-off).
    assert lr_mse(sr + 0.1, lr, op) == pytest.approx(0.01, rel=1e-9)
    x = lr.double()
    assert lr_rel(sr + 0.1, lr, op) == pytest.approx(0.1 * math.sqrt(x.numel()) / float(x.norm()), rel=1e-9)
    # One perturbed HR pixel also shows up, and the error is not a max / per-image quantity.
    one = sr.clone()
    one[0, 0, 16, 16] += 1e-3
    assert 0 < lr_mse(one, lr, op) < 1e-8


def test_lr_metrics_accept_numpy_and_check_shapes(op, batch):
    lr, hr = batch
    assert lr_mse(hr.numpy(), lr.numpy(), op) == pytest.approx(lr_mse(hr, lr, op), rel=1e-12)
    assert lr_mse(hr, lr, op) < 1e-12  # the stored pair itself is consistent
    with pytest.raises(ValueError, match="does not match"):
        lr_mse(hr[:, :, :16, :16], lr, op)


def test_lr_psnr_known_values_and_cap(op, batch):
    lr, _ = batch
    sr = reference_outputs("pinv", lr, op)
    assert lr_psnr(sr + 0.1, lr, op) == pytest.approx(20.0, abs=1e-6)  # lr_mse = 0.01 (see above)
    assert 250 < lr_psnr(sr, lr, op) < LR_PSNR_CAP  # float64 round-off only, still finite
    y = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    assert lr_psnr(y, op(y), op) == LR_PSNR_CAP == 400.0  # lr_mse exactly 0: capped, not inf


# ---- PSNR / SSIM ----------------------------------------------------------------------------------------


def test_psnr_identical_is_the_8bit_ceiling_and_ssim_is_one(batch):
    _, hr = batch
    ceiling = 10 * math.log10(12 * 255**2)  # ideal 8-bit rounding noise: ≈ 58.9 dB
    assert psnr(hr, hr) == pytest.approx(ceiling, abs=1e-9)
    assert ssim(hr, hr) == pytest.approx(1.0, abs=1e-12)
    # one flat image reproduced exactly (a black photo patch under bicubic) no longer makes the mean inf
    sr = hr.double() + 0.1
    sr[0] = hr[0]
    assert psnr(sr, hr) == pytest.approx((ceiling + 20.0 * (len(hr) - 1)) / len(hr), abs=1e-6)


def test_psnr_constant_offset_is_20db(batch):
    _, hr = batch
    assert psnr(hr.double() + 0.1, hr) == pytest.approx(20.0, abs=1e-9)
    grey = hr[:, :1]
    assert psnr(grey.double() - 0.1, grey) == pytest.approx(20.0, abs=1e-9)


def test_psnr_is_mean_over_images_not_of_pooled_mse():
    hr = np.full((2, 1, 16, 16), 0.5)
    sr = hr + np.array([0.1, 0.01])[:, None, None, None]
    assert psnr(sr, hr) == pytest.approx(30.0, abs=1e-9)  # mean(20, 40); pooled MSE would give ≈ 22.97


def test_sr_is_not_clipped():
    hr = np.full((1, 1, 16, 16), 0.95)
    sr = hr + 0.1  # 1.05 > 1: unclipped PSNR is 20 dB; clipping to 1 would give 26.02 dB
    assert psnr(sr, hr) == pytest.approx(20.0, abs=1e-9)
    assert ssim(sr, hr) == pytest.approx(
        structural_similarity(hr[0, 0], sr[0, 0], data_range=1.0), abs=1e-12
    )


def test_psnr_ssim_match_skimage_per_image(batch):
    lr, hr = batch
    sr = bicubic(lr, 4)
    a, b = sr.double().numpy(), hr.double().numpy()
    exp_p = np.mean([peak_signal_noise_ratio(b[i], a[i], data_range=1.0) for i in range(4)])
    exp_s = np.mean(
        [
            structural_similarity(b[i].transpose(1, 2, 0), a[i].transpose(1, 2, 0), data_range=1.0, channel_axis=-1)
            for i in range(4)
        ]
    )
    assert psnr(sr, hr) == pytest.approx(exp_p, abs=1e-9)
    assert ssim(sr, hr) == pytest.approx(exp_s, abs=1e-9)
    assert ssim(sr.numpy(), hr.numpy()) == pytest.approx(exp_s, abs=1e-9)
    assert 0 < ssim(sr, hr) < 1
    # grey images are handled as 2-D
    exp_g = np.mean([structural_similarity(b[i, 0], a[i, 0], data_range=1.0) for i in range(4)])
    assert ssim(sr[:, :1], hr[:, :1]) == pytest.approx(exp_g, abs=1e-9)


def test_psnr_shape_mismatch():
    with pytest.raises(ValueError, match="does not match"):
        psnr(np.zeros((1, 1, 16, 16)), np.zeros((1, 1, 16, 8)))


# ---- references -----------------------------------------------------------------------------------------


def test_bicubic_shapes_and_constants():
    x = torch.rand(2, 3, 8, 6)
    up = bicubic(x, 4)
    assert up.shape == (2, 3, 32, 24) and up.dtype == torch.float32
    const = torch.full((1, 1, 8, 8), 0.25, dtype=torch.float64)
    torch.testing.assert_close(bicubic(const, 4), torch.full((1, 1, 32, 32), 0.25, dtype=torch.float64))
    assert bicubic(np.zeros((1, 1, 5, 5), np.float32), 2).shape == (1, 1, 10, 10)


def test_bicubic_reproduces_lr_pixels_at_a_s_sampling_positions():
    x = torch.rand(2, 3, 8, 6, dtype=torch.float64)
    up = bicubic(x, 4)
    assert up.dtype == torch.float64
    torch.testing.assert_close(up[..., ::4, ::4], x, atol=1e-15, rtol=0)  # HR pixel s·i is LR pixel i
    torch.testing.assert_close(bicubic(x, 3)[..., ::3, ::3], x, atol=1e-15, rtol=0)


def test_bicubic_is_shift_equivariant_on_the_circular_grid():
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    rolled = bicubic(torch.roll(x, (1, -2), dims=(-2, -1)), 4)
    torch.testing.assert_close(rolled, torch.roll(bicubic(x, 4), (4, -8), dims=(-2, -1)))


def test_bicubic_matches_pytorch_in_the_interior_on_the_box_grid():
    """With offset (s − 1)/2 it is F.interpolate(align_corners=False) (Keys a = −0.75) away from the border."""
    x = torch.rand(2, 1, 10, 10, dtype=torch.float64)
    ours = bicubic(x, 4, offset=1.5)
    theirs = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    torch.testing.assert_close(ours[..., 8:-8, 8:-8], theirs[..., 8:-8, 8:-8])
    box = operator_of("box", scale=4)
    torch.testing.assert_close(reference_outputs("bicubic", x, box), ours)


def test_aligned_bicubic_beats_a_misaligned_one_on_a_smooth_image(op):
    """lr = A y of a low-frequency y: bicubic on A's grid recovers y far better than 1.5 px off."""
    j = torch.arange(32, dtype=torch.float64)
    wave = 0.5 + 0.2 * torch.cos(2 * math.pi * (2 * j / 32 + 0.1))
    y = (wave[:, None] * wave[None, :])[None, None]
    x = op(y)
    aligned, shifted = psnr(bicubic(x, 4), y), psnr(bicubic(x, 4, offset=1.5), y)
    assert aligned > shifted + 6
    # A blurs a little (σ = 1 px), so even the aligned one is not exact; but it is close
    assert aligned > 35


def test_reference_outputs(op, batch):
    lr, _ = batch
    b = reference_outputs("bicubic", lr, op)
    p = reference_outputs("pinv", lr, op)
    assert b.shape == p.shape == (4, 3, 32, 32)
    torch.testing.assert_close(b, bicubic(lr.double(), 4))
    torch.testing.assert_close(p, op.pinv(lr.double()))
    assert not torch.allclose(b, p)
    assert lr_mse(b, lr, op) > 1e-6  # bicubic is not consistent with this A
    with pytest.raises(ValueError, match="allowed names: bicubic, pinv"):
        reference_outputs("nearest", lr, op)


def test_paired_metrics_of_the_table_are_the_functions(op, batch):
    """A method's paired rows: the table's order, each value the metric's own function."""
    lr, hr = batch
    sr = reference_outputs("pinv", lr, op)
    m = {k: v for k, v in compute_metrics(Scored(outputs=sr, op=op, compared=sr, real=hr, lr=lr, hr=hr)).items()
         if BY_NAME[k].needs == "pairs"}
    assert list(m) == ["lr_mse", "lr_rel", "lr_psnr", "psnr", "ssim"]
    assert all(isinstance(v, float) for v in m.values())
    assert m["lr_mse"] == lr_mse(sr, lr, op) and m["psnr"] == psnr(sr, hr) and m["ssim"] == ssim(sr, hr)
    assert m["lr_psnr"] == lr_psnr(sr, lr, op) > 250
    assert m["lr_mse"] < 1e-12 and 0 < m["psnr"] < 100


def test_a_metric_is_computed_only_where_it_has_what_it_needs(op, batch):
    """The real-data floor (no pairs) gets only the set metrics; draws and the density model add theirs."""
    lr, hr = batch
    real = compute_metrics(Scored(outputs=hr, op=op, compared=hr[:2], real=hr[2:], c2st_steps=2))
    assert list(real) == [m.name for m in METRICS if m.needs == "sets"]
    draws = torch.stack([hr, hr.flip(-1)], dim=1)
    stochastic = compute_metrics(Scored(outputs=hr, op=op, compared=hr, real=hr, lr=lr, hr=hr, draws=draws,
                                        c2st_steps=2))
    assert [k for k in stochastic if BY_NAME[k].needs == "draws"] == ["diversity", "lr_mse_draws"]
    assert stochastic["diversity"] > 0


def test_every_metric_record_is_complete():
    """Tables, figures and claims read these fields: each record has them, with a usable format."""
    assert len({m.name for m in METRICS}) == len(METRICS)
    for m in METRICS:
        assert m.needs in NEEDS and m.label and m.table_format.format(1.5)
        assert m.readme_format == "" or m.readme_format.format(1.5)
    with pytest.raises(ValueError, match="needs must be one of"):
        Metric("x", lambda s, done: 0.0, "everything", True, "x")


def test_box_operator_pinv_is_consistent():
    op = operator_of("box", scale=2)
    lr = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    assert lr_mse(reference_outputs("pinv", lr, op), lr, op) < 1e-25
