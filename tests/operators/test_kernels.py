"""Tests for affsr.operators.kernels: each kernel's shape, normalisation and phase, PIL's bicubic/box reductions matched
on interior pixels, .npy kernels refused with one-line errors, and the operator settings that choose them.
(A, Aᵀ and A⁺ of every kind against dense matrices: tests/test_operators.py.)"""

import math

import numpy as np
import pytest
import torch

from affsr.operators import kernels
from affsr.config.data import OperatorConfig
from affsr.errors import ConfigError
from affsr.operators.downsampling import Downsampling
from affsr.operators.kinds import build_operator, check_operator
from affsr.operators.interpolation import grid_offset
from affsr.config.parse import from_dict
from conftest import operator_of

SCALES = range(2, 9)


def test_isotropic_gaussian_is_the_studys_kernel_bit_for_bit():
    t = torch.arange(9, dtype=torch.float64) - 4
    g = torch.exp(-(t**2) / 2)
    kernel, origin = kernels.gaussian(1.0, 9)
    assert torch.equal(kernel, torch.outer(g, g) / torch.outer(g, g).sum()) and origin == (4, 4)
    # equal sigmas are the isotropic kernel whatever the angle, and describe themselves as it
    assert torch.equal(kernels.anisotropic_gaussian(1.3, 1.3, 37.0, 7)[0], kernels.gaussian(1.3, 7)[0])
    assert operator_of("gaussian", sigma_x=1.0, sigma_y=1.0, angle=20.0, size=9, scale=4).describe() == Downsampling.gaussian().describe()


def _principal_angle(kernel: torch.Tensor, origin) -> float:
    """Direction (degrees, counter-clockwise as displayed, in [0, 180)) of the kernel's major axis."""
    kh, kw = kernel.shape
    row, col = torch.meshgrid(torch.arange(kh, dtype=torch.float64) - origin[0],
                              torch.arange(kw, dtype=torch.float64) - origin[1], indexing="ij")
    x, y = col, -row  # y up, as displayed
    cov = np.array([[float((kernel * x * x).sum()), float((kernel * x * y).sum())],
                    [float((kernel * x * y).sum()), float((kernel * y * y).sum())]])
    vals, vecs = np.linalg.eigh(cov)
    vx, vy = vecs[:, -1]
    return math.degrees(math.atan2(vy, vx)) % 180


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0])
def test_anisotropic_gaussian_points_along_its_angle(angle):
    kernel, origin = kernels.anisotropic_gaussian(3.0, 1.0, angle, 31)
    assert kernel.shape == (31, 31) and origin == (15, 15)
    assert abs(float(kernel.sum()) - 1) < 1e-12
    assert torch.allclose(kernel, kernel.flip(0, 1), atol=1e-15)  # point-symmetric: centred on s·i
    assert abs((_principal_angle(kernel, origin) - angle + 90) % 180 - 90) < 1e-6
    if angle == 90.0:
        torch.testing.assert_close(kernel, kernels.anisotropic_gaussian(3.0, 1.0, 0.0, 31)[0].T, atol=1e-15, rtol=0)


@pytest.mark.parametrize("length, angle, shape", [(7.0, 0.0, (1, 9)), (7.0, 90.0, (9, 1)), (5.0, 45.0, (5, 5)),
                                                  (10.0, 30.0, (7, 11)), (0.5, 0.0, (1, 3))])
def test_motion_kernel_is_a_centred_line(length, angle, shape):
    kernel, origin = kernels.motion(length, angle)
    assert kernel.shape == shape and origin == (shape[0] // 2, shape[1] // 2)
    assert abs(float(kernel.sum()) - 1) < 1e-12 and (kernel >= 0).all()
    assert torch.equal(kernel, kernel.flip(0, 1))
    if length > 1:
        assert abs((_principal_angle(kernel, origin) - angle + 90) % 180 - 90) < 0.5
    if angle == 0.0 and length > 1:  # uniform segment ⊛ bilinear splat: variance L²/12 + 1/6 along the line
        taps = torch.arange(shape[1], dtype=torch.float64) - origin[1]
        assert abs(float((kernel[0] * taps**2).sum()) - (length**2 / 12 + 1 / 6)) < 0.02


@pytest.mark.parametrize("s", SCALES)
def test_box_and_bicubic_phase_and_size(s):
    box, bic = operator_of("box", scale=s), operator_of("bicubic", scale=s)
    assert box.kernel_shape == (s, s) and box.origin == (0, 0)
    assert bic.kernel_shape == ((4 * s, 4 * s) if s % 2 == 0 else (4 * s - 1, 4 * s - 1))
    for op in (box, bic):
        assert abs(float(op.kernel.sum()) - 1) < 1e-12
        assert grid_offset(op) == pytest.approx(((s - 1) / 2, (s - 1) / 2), abs=1e-12)
    assert (bic.kernel < 0).any()  # negative lobes, accepted by A
    for op in (Downsampling.gaussian(1.0, 9, s), operator_of("motion", length=6.0, angle=30.0, scale=s),
               operator_of("gaussian", sigma_x=2.0, sigma_y=0.5, angle=20.0, size=9, scale=s)):
        assert grid_offset(op) == pytest.approx((0.0, 0.0), abs=1e-12)


def _pil_reduce(y: np.ndarray, s: int, resample) -> np.ndarray:
    from PIL import Image

    h, w = y.shape
    return np.asarray(Image.fromarray(y.astype(np.float32), mode="F").resize((w // s, h // s), resample))


@pytest.mark.parametrize("s", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("kind", ["bicubic", "area", "box"])
def test_bicubic_and_area_match_pil_on_interior_pixels(kind, s):
    from PIL import Image

    y = np.random.default_rng(s).random((10 * s, 12 * s)).astype(np.float32)
    op = build_operator(OperatorConfig(kind=kind, scale=s))
    ours = op(torch.from_numpy(y.astype(np.float64))[None, None])[0, 0].numpy()
    pil = _pil_reduce(y, s, Image.BICUBIC if kind == "bicubic" else Image.BOX)
    # PIL clamps at the border, A wraps: compare LR pixels whose support (±2s HR pixels) stays inside
    m = 2 if kind == "bicubic" else 0
    err = np.abs(ours - pil)[m:ours.shape[0] - m, m:ours.shape[1] - m].max()
    assert err <= 1e-4, err  # float32 storage of PIL's intermediate image: ~5e-8 in practice
    if kind == "bicubic":
        assert np.abs(ours - pil).max() > 1e-3  # the border really differs, so the margin is needed


def test_area_is_box_under_its_own_name():
    area = build_operator(OperatorConfig(kind="area", scale=3))
    box = build_operator(OperatorConfig(kind="box", scale=3))
    assert torch.equal(area.kernel, box.kernel) and area.origin == box.origin
    assert area.describe() == {"name": "area", "scale": 3, "kernel_size": 3, "origin": 0}


# ---- kernels from .npy files ------------------------------------------------------------------------------


def test_file_kernel_is_normalised_and_keeps_its_origin(tmp_path):
    path = tmp_path / "k.npy"
    raw = np.arange(15, dtype=np.float32).reshape(3, 5) + 1
    np.save(path, raw)
    kernel, origin = kernels.from_file(path)
    assert origin == (1, 2) and abs(float(kernel.sum()) - 1) < 1e-12 and kernel.dtype == torch.float64
    torch.testing.assert_close(kernel, torch.from_numpy(raw / raw.sum()).double())
    assert kernels.from_file(path, (0, 4))[1] == (0, 4) and kernels.from_file(path, (2,))[1] == (2, 2)
    np.save(path, np.ones((2, 2), dtype=np.int64))  # integers are numbers too
    assert torch.equal(kernels.from_file(path)[0], torch.full((2, 2), 0.25, dtype=torch.float64))


@pytest.mark.parametrize("array, match", [
    (np.ones((3, 3, 1)), "2-D array, got shape"),
    (np.ones(5), "2-D array, got shape"),
    (np.zeros((0, 3)), "2-D array, got shape"),
    (np.array([[1.0, np.nan], [1.0, 1.0]]), "NaN or infinite"),
    (np.array([[1.0, np.inf], [1.0, 1.0]]), "NaN or infinite"),
    (np.array([[1.0, -1.0]]), "sum must be > 0"),
    (np.array([["a", "b"]]), "real numbers"),
    (np.ones((3, 3), dtype=bool), "real numbers"),
])
def test_bad_kernel_files_are_one_line_config_errors(tmp_path, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(ConfigError, match=match) as info:
        kernels.from_file(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_missing_pickled_or_misplaced_kernel_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=f"^{tmp_path}/none.npy: cannot read"):
        kernels.from_file(tmp_path / "none.npy")
    np.save(tmp_path / "obj.npy", np.array([[{}]], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match="obj.npy: cannot read"):
        kernels.from_file(tmp_path / "obj.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(ConfigError, match="text.npy: cannot read"):
        kernels.from_file(tmp_path / "text.npy")
    np.save(tmp_path / "k.npy", np.ones((3, 5)))
    with pytest.raises(ConfigError, match=r"k.npy: origin \[3, 0\] is not a tap of the 3x5 kernel"):
        kernels.from_file(tmp_path / "k.npy", (3, 0))
    with pytest.raises(ConfigError, match="k.npy.gone: cannot read"):  # a config that names no usable file
        build_operator(OperatorConfig(kind="file", kernel_file=str(tmp_path / "k.npy") + ".gone"))


def test_builders_refuse_bad_arguments():
    for call in (lambda: kernels.gaussian(0.0), lambda: kernels.anisotropic_gaussian(1.0, 0.0),
                 lambda: kernels.motion(0.0), lambda: kernels.box(0), lambda: kernels.bicubic(2.5)):
        with pytest.raises(ValueError):
            call()


# ---- the settings that choose a kernel (OperatorConfig) ----------------------------------------------------


def test_old_operator_settings_stay_valid_and_mean_the_same():
    for old in ({"kind": "gaussian", "sigma": 1.0, "size": 9, "scale": 4}, {"kind": "box", "scale": 3}):
        cfg = from_dict(OperatorConfig, old, "params.operator")
        new = (cfg.sigma_x, cfg.sigma_y, cfg.angle, cfg.length, cfg.kernel_file, cfg.origin)
        assert new == (0.0, 0.0, 0.0, 0.0, "", ())
    assert build_operator(OperatorConfig()).describe() == {"name": "gaussian", "scale": 4, "kernel_size": 9,
                                                           "origin": 4, "sigma": 1.0}


def test_sigma_x_and_sigma_y_default_to_sigma():
    cfg = OperatorConfig(sigma=1.5, sigma_x=3.0, angle=30.0, size=15, scale=2)
    op = build_operator(cfg)
    assert op.describe() == {"name": "gaussian", "scale": 2, "kernel_size": 15, "origin": 7, "sigma_x": 3.0,
                             "sigma_y": 1.5, "angle": 30.0}
    assert torch.equal(op.kernel, kernels.anisotropic_gaussian(3.0, 1.5, 30.0, 15)[0])


@pytest.mark.parametrize("settings, message", [
    ({"sigma_x": -1.0}, "sigma_x: must be ≥ 0"),
    ({"sigma_y": -0.5}, "sigma_y: must be ≥ 0"),
    ({"kind": "motion", "length": -2.0}, "length: must be ≥ 0"),
    ({"kind": "file", "kernel_file": "k.npy", "origin": (1, 2, 3)}, "origin: must be [], [o] or [oy, ox] ≥ 0"),
    ({"origin": (-1,)}, "origin: must be [], [o] or [oy, ox] ≥ 0"),
])
def test_operator_settings_are_range_checked(settings, message):
    with pytest.raises(ValueError) as info:
        OperatorConfig(**settings)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("settings, message", [
    ({"kind": "lanczos"}, "operator.kind: 'lanczos' is not one of: gaussian, box, area, bicubic, motion, file"),
    ({"kind": "motion"}, "operator.length: must be > 0 for kind motion"),
    ({"kind": "file"}, "operator.kernel_file: must be a .npy file for kind file"),
])
def test_each_kind_checks_the_settings_it_needs(settings, message):
    """The kind's row of KINDS refuses what it cannot build, naming the key, before anything is built."""
    cfg = OperatorConfig(**settings)
    for check in (check_operator, build_operator):
        with pytest.raises(ConfigError) as info:
            check(cfg)
        assert str(info.value).startswith(message)
