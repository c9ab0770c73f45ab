"""The realism metrics: known answers of swd, spectrum_distance and c2st on grass textures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.data import grass

from affsr.evaluation import c2st as c2st_module
from affsr.evaluation import swd as swd_module
from affsr.evaluation.c2st import c2st
from affsr.evaluation.evaluate import real_data_halves
from affsr.evaluation.metrics import Scored, compute_metrics
from affsr.evaluation.swd import laplacian_pyramid, swd, swd_per_level
from affsr.operators.downsampling import Downsampling
from affsr.evaluation.spectrum import radial_power_spectrum, spectrum_distance


def _crops(rows: tuple[int, int], n: int, seed: int, size: int = 32) -> torch.Tensor:
    """n random size×size crops of skimage's grass from the given row range, (n, 1, size, size) on [0, 1]."""
    img = grass().astype(np.float64) / 255
    rng = np.random.default_rng(seed)
    r = rng.integers(rows[0], rows[1] - size, n)
    c = rng.integers(0, img.shape[1] - size, n)
    return torch.from_numpy(np.stack([img[i : i + size, j : j + size] for i, j in zip(r, c)])[:, None]).float()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The measures are timed for one thread (and oversubscribed threads on a shared CPU are slow)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


P = 32  # patches per image in the swd tests (default 128): 4096 descriptors per level, 4× faster


@pytest.fixture(scope="module")
def sets() -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent sets of one texture: crops from the top and the bottom half of the image."""
    return _crops((0, 256), 128, seed=0), _crops((256, 512), 128, seed=1)


def _blur(x: torch.Tensor) -> torch.Tensor:
    return swd_module._blur(x)


def _noisy(x: torch.Tensor, sigma: float = 0.1) -> torch.Tensor:
    return x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(5))


# ---- swd ------------------------------------------------------------------------------------------------


def test_laplacian_pyramid_levels_and_exact_reconstruction(sets):
    a, _ = sets
    pyr = laplacian_pyramid(a)
    assert [lv.shape[-1] for lv in pyr] == [32, 16, 8]
    assert [lv.shape[-1] for lv in laplacian_pyramid(torch.zeros(2, 1, 24, 24))] == [24, 12]
    assert [lv.shape[-1] for lv in laplacian_pyramid(torch.zeros(2, 3, 128, 128))] == [128, 64, 32, 16, 8]
    g = pyr[-1]  # collapse: G_k = L_k + up(G_{k+1})
    for lv in reversed(pyr[:-1]):
        up = torch.zeros_like(lv)
        up[..., ::2, ::2] = g
        g = lv + 4 * swd_module._blur(up)
    torch.testing.assert_close(g, a, atol=1e-5, rtol=0)


def test_swd_of_a_set_with_itself_is_zero_and_blur_noise_are_farther(sets):
    a, b = sets
    assert swd(a, a, patches_per_image=P) == 0.0
    same = swd(a, b, patches_per_image=P)  # another sample of the same texture: finite-sample noise only
    assert 0 < same < 0.4 * swd(_blur(a), b, patches_per_image=P)
    assert same < 0.7 * swd(_noisy(a), b, patches_per_image=P)
    levels = swd_per_level(a, b, patches_per_image=P)
    assert len(levels) == 3 and same == pytest.approx(levels.mean())


def test_swd_is_symmetric_order_invariant_and_seeded(sets):
    a, b = sets
    perm = torch.randperm(len(a), generator=torch.Generator().manual_seed(3))
    base = swd(a, b, seed=1, patches_per_image=P)
    assert swd(a[perm], b, seed=1, patches_per_image=P) == pytest.approx(base, rel=1e-5)
    assert swd(b, a, seed=1, patches_per_image=P) == pytest.approx(base, rel=1e-5)
    assert swd(a, b, seed=1, patches_per_image=P) == base
    assert swd(a.double().numpy(), b.numpy(), seed=1, patches_per_image=P) == pytest.approx(base, rel=1e-5)
    other = swd(a, b, seed=2, patches_per_image=P)
    assert other != base and other == pytest.approx(base, rel=0.3)
    assert swd(a[:100], b, seed=1, patches_per_image=P) == pytest.approx(base, rel=0.5)  # unequal sizes allowed


# ---- spectrum -------------------------------------------------------------------------------------------


def test_radial_spectrum_of_white_noise_is_flat_at_its_variance():
    noise = 0.1 * torch.randn(64, 1, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    freq, logp = radial_power_spectrum(noise, eps=0.0)
    assert freq[0] == pytest.approx(1 / 32) and np.all(np.diff(freq) > 0)
    np.testing.assert_allclose(logp[:-2], np.log10(0.01), atol=0.1)  # the last bins hold few frequencies


def test_radial_spectrum_has_a_peak_at_a_sinusoids_frequency():
    j = np.arange(32)
    wave = 0.5 + 0.2 * np.cos(2 * np.pi * 8 * j / 32)[None, :] * np.ones((32, 1))
    freq, logp = radial_power_spectrum(wave[None, None])
    assert freq[np.argmax(logp)] == pytest.approx(8 / 32)


def test_spectrum_distance_zero_for_self_and_sees_blur_and_noise(sets):
    a, b = sets
    assert spectrum_distance(a, a) == 0.0
    same = spectrum_distance(a, b)
    assert same < 0.2 * spectrum_distance(_blur(a), b)
    assert same < 0.2 * spectrum_distance(_noisy(a), b)
    perm = torch.randperm(len(a), generator=torch.Generator().manual_seed(3))
    assert spectrum_distance(a[perm], b) == pytest.approx(same, rel=1e-9)
    assert spectrum_distance(b, a) == pytest.approx(same, rel=1e-12)


# ---- c2st -----------------------------------------------------------------------------------------------


def test_c2st_is_chance_for_one_distribution_and_one_for_obvious_differences(sets):
    a, b = sets
    assert 0.3 <= c2st(a, b, seed=0) <= 0.7
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(64, 1, 32, 32, generator=g)
    flat = 0.5 + 0.02 * torch.rand(64, 1, 32, 32, generator=g)
    assert c2st(noise, flat, seed=0, steps=100) >= 0.95
    assert c2st(_blur(a), b, seed=0) >= 0.9  # blur of the same texture is caught too


def _set_metrics(compared: torch.Tensor, real: torch.Tensor, **options) -> dict[str, float]:
    """The realism rows of the metric table for one set against another (no pairs: the set metrics only)."""
    return compute_metrics(Scored(outputs=compared, op=Downsampling.gaussian(), compared=compared, real=real,
                                  **options))


def test_the_table_trains_the_classifier_for_c2st_steps(sets):
    """evaluate.c2st_steps reaches the classifier: one step cannot yet tell blur from texture, 200 can."""
    a, b = sets
    assert _set_metrics(_blur(a), b, c2st_steps=1)["c2st"] < 0.75
    assert _set_metrics(_blur(a), b, c2st_steps=200)["c2st"] >= 0.9


def test_c2st_is_deterministic_and_leaves_the_global_rng_alone(sets):
    a, b = sets
    x, y = _noisy(a[:32], 0.05), b[:32]
    state = torch.get_rng_state()
    first = c2st(x, y, seed=4, steps=50)
    assert torch.equal(torch.get_rng_state(), state)
    assert c2st(x, y, seed=4, steps=50) == first
    assert first * 64 == int(first * 64)  # an accuracy over all 64 images, each held out once


def test_c2st_grouped_folds_keep_groups_together():
    gen = torch.Generator().manual_seed(0)
    groups = np.array([0] * 5 + [1] * 3 + [2] * 2 + [3] * 2)
    folds = c2st_module._assign_folds(12, 2, gen, groups)
    for label in np.unique(groups):
        assert len(set(folds[groups == label].tolist())) == 1
    assert sorted(torch.bincount(folds).tolist()) == [5, 7]  # largest first to the emptier fold: 5 | 3 + 2, then 2
    with pytest.raises(ValueError, match="groups"):
        c2st_module._assign_folds(12, 2, gen, groups[:5])
    with pytest.raises(ValueError, match="at least 2 groups"):
        c2st_module._assign_folds(12, 2, gen, np.zeros(12))


def test_real_data_floor_of_halves(sets):
    a, b = sets
    hr = torch.cat([a, b])
    first, second, groups = real_data_halves(hr, groups=np.repeat([0, 1], 128))
    floor = _set_metrics(first, second, groups=groups)
    assert set(floor) == {"swd", "spectrum_distance", "hf_ratio", "c2st", "c2st_se"}
    assert 0.3 <= floor["c2st"] <= 0.7
    assert floor["spectrum_distance"] < 0.2 * spectrum_distance(_blur(a), b)


# ---- input checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [swd, spectrum_distance, c2st])
def test_shape_errors(fn):
    x = torch.rand(4, 1, 16, 16)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fn(x[0], x)
    with pytest.raises(ValueError, match="differ"):
        fn(x, torch.rand(4, 3, 16, 16))
    with pytest.raises(ValueError, match="no images"):
        fn(x[:0], x)
    with pytest.raises(ValueError, match="floats"):
        fn((x * 255).to(torch.uint8), x)


def test_c2st_needs_balanced_sets_and_swd_needs_room_for_a_patch():
    with pytest.raises(ValueError, match="as many outputs as real"):
        c2st(torch.rand(4, 1, 16, 16), torch.rand(5, 1, 16, 16))
    with pytest.raises(ValueError, match="smaller than"):
        swd(torch.rand(4, 1, 6, 6), torch.rand(4, 1, 6, 6))


def test_hf_ratio_sees_blur_below_one_and_noise_above(sets):
    from affsr.evaluation.spectrum import hf_ratio

    real, other = sets
    assert hf_ratio(real, real) == pytest.approx(1.0)
    assert 0.7 < hf_ratio(other, real) < 1.4  # the same texture elsewhere
    assert hf_ratio(_blur(real), real) < 0.5
    assert hf_ratio(_noisy(real), real) > 1.5  # σ = 0.1 white noise ≈ doubles the fine-detail power
    with pytest.raises(ValueError, match="cutoff"):
        hf_ratio(real, real, cutoff=1.0)
