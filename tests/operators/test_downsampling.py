"""Tests for affsr.operators: A, Aᵀ, exact A⁺ (against dense numpy matrices) and the affine projection."""

import json

import numpy as np
import pytest
import torch

from affsr.config.data import OperatorConfig
from affsr.errors import ConfigError
from affsr.operators.projection import AffineProjection
from affsr.operators import kernels
from affsr.operators.linear_solvers import GRAM_TOL
from affsr.operators.downsampling import Downsampling
from affsr.operators.kinds import build_operator, operator_from_description
from conftest import operator_of


def random_kernel(k: int | tuple[int, int] = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    kern = torch.rand(*((k, k) if isinstance(k, int) else k), generator=g, dtype=torch.float64) + 0.1
    return kern / kern.sum()


def rank_deficient_3x2(s: int) -> Downsampling:
    """Rows: a 2-tap mean; columns: taps at ±1 only. At stride 2 neighbouring LR pixels share HR column
    2i + 1 and Σ_aliases |cos ω|² = 2cos²(ω_lr/2) vanishes at ω_lr = π (on an even LR width): A Aᵀ is
    singular. (At strides 3, 4, 8 the LR pixels see disjoint columns: full rank.)"""
    return Downsampling(torch.outer(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.0, 0.5])).double(), s,
                        origin=(0, 1))


KERNELS = {
    "gauss0.5": lambda s: Downsampling.gaussian(0.5, 9, s),
    "gauss1.0": lambda s: Downsampling.gaussian(1.0, 9, s),
    "gauss2.0": lambda s: Downsampling.gaussian(2.0, 9, s),
    "box": lambda s: operator_of("box", scale=s),
    "random5": lambda s: Downsampling(random_kernel(5), s),
    "random5_origin0": lambda s: Downsampling(random_kernel(5, seed=1), s, origin=0),
    # every kind of operator.kind, through its settings
    **{f"cfg_{kind}": (lambda s, kw=kw: build_operator(OperatorConfig(scale=s, **kw))) for kind, kw in [
        ("aniso", {"sigma_x": 2.0, "sigma_y": 0.6, "angle": 30.0}), ("area", {"kind": "area"}),
        ("bicubic", {"kind": "bicubic"}), ("motion", {"kind": "motion", "length": 5.0, "angle": 30.0}),
        ("motion_h", {"kind": "motion", "length": 7.0}),
        ("motion_v", {"kind": "motion", "length": 4.0, "angle": 90.0})]},
    # rectangular and asymmetric, one origin per axis
    "random3x5_origin0_4": lambda s: Downsampling(random_kernel((3, 5), seed=5), s, origin=(0, 4)),
    "random6x2": lambda s: Downsampling(random_kernel((6, 2), seed=6), s),
    "rank_deficient_3x2": rank_deficient_3x2,
}
# Non-square HR sizes (>= 9 for the 9-tap kernels) so a swapped H/W would show up; larger where a kernel
# is (bicubic: 4s taps).
SIZES = {2: (12, 16), 3: (12, 9), 4: (16, 12), 8: (32, 40)}  # w even at s = 2: see rank_deficient_3x2


def hr_size(op: Downsampling) -> tuple[int, int]:
    s, (kh, kw) = op.scale, op.kernel_shape
    H, W = SIZES[s]
    H, W = max(H, -(-kh // s) * s), max(W, -(-kw // s) * s)
    return (H, W + s) if H == W else (H, W)


def dense(fn, in_shape) -> np.ndarray:
    """Dense matrix of a linear map on single-channel images: column j = fn(basis image j), float64."""
    n = int(np.prod(in_shape))
    basis = torch.eye(n, dtype=torch.float64).reshape(n, 1, *in_shape)
    return fn(basis).reshape(n, -1).T.numpy()


def dense_ops(op: Downsampling, H: int, W: int):
    h, w = H // op.scale, W // op.scale
    return dense(op, (H, W)), dense(op.adjoint, (h, w)), dense(op.pinv, (h, w))


def numpy_pinv(op: Downsampling, A: np.ndarray) -> np.ndarray:
    # GRAM_TOL thresholds eigenvalues of A Aᵀ, i.e. squared singular values of A.
    return np.linalg.pinv(A, rcond=np.sqrt(GRAM_TOL))


def assert_penrose(A: np.ndarray, P: np.ndarray, atol: float) -> None:
    AP, PA = A @ P, P @ A
    np.testing.assert_allclose(AP @ A, A, atol=atol)
    np.testing.assert_allclose(PA @ P, P, atol=atol * max(1.0, np.abs(P).max()))
    np.testing.assert_allclose(AP.T, AP, atol=atol)
    np.testing.assert_allclose(PA.T, PA, atol=atol)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("kname", list(KERNELS))
def test_pinv_matches_numpy_and_penrose(kname, scale):
    op = KERNELS[kname](scale)
    A, At, P = dense_ops(op, *hr_size(op))
    np.testing.assert_allclose(At, A.T, atol=1e-12)  # adjoint is the exact transpose
    P_ref = numpy_pinv(op, A)
    assert np.linalg.matrix_rank(P_ref) == np.linalg.matrix_rank(P)
    # Relative to the size of A⁺ (large for ill-conditioned gauss2.0 at scale 2).
    np.testing.assert_allclose(P, P_ref, atol=1e-10 * max(1.0, np.abs(P_ref).max()))
    assert_penrose(A, P, atol=1e-10)
    if kname == "rank_deficient_3x2" and scale == 2:
        assert np.linalg.matrix_rank(A) < A.shape[0]  # really rank-deficient: the threshold is exercised


def test_file_kernel_pinv_matches_numpy_and_penrose(tmp_path):
    """Kind ``file``, rectangular and asymmetric with its own origin, from an unnormalised .npy."""
    np.save(tmp_path / "k.npy", 7.0 * random_kernel((3, 5), seed=7).numpy())
    for s in (2, 3):
        op = build_operator(OperatorConfig(kind="file", kernel_file=str(tmp_path / "k.npy"), origin=(2, 1), scale=s))
        assert op.kernel_shape == (3, 5) and op.origin == (2, 1)
        A, At, P = dense_ops(op, *SIZES[s])
        np.testing.assert_allclose(At, A.T, atol=1e-12)
        np.testing.assert_allclose(P, numpy_pinv(op, A), atol=1e-10 * max(1.0, np.abs(P).max()))
        assert_penrose(A, P, atol=1e-10)


def reference_downsample(y: np.ndarray, kern: np.ndarray, s: int, o: int) -> np.ndarray:
    """Loop definition: x[i,j] = Σ_ab kern[a,b] y[(s i + a − o) mod H, (s j + b − o) mod W]."""
    H, W = y.shape
    (kh, kw), (oy, ox) = kern.shape, ((o, o) if isinstance(o, int) else o)
    x = np.zeros((H // s, W // s))
    for i in range(H // s):
        for j in range(W // s):
            for a in range(kh):
                for b in range(kw):
                    x[i, j] += kern[a, b] * y[(s * i + a - oy) % H, (s * j + b - ox) % W]
    return x


@pytest.mark.parametrize("shape, origin, expected", [(5, None, 2), (5, 0, 0), (5, 3, 3), ((3, 5), None, (1, 2)),
                                                     ((3, 5), (0, 4), (0, 4)), ((6, 2), (5, 0), (5, 0))])
def test_forward_matches_loop_reference(shape, origin, expected):
    kern = random_kernel(shape, seed=2)  # asymmetric, so orientation and origin are pinned
    op = Downsampling(kern, 3, origin=origin)
    assert op.origin == ((expected, expected) if isinstance(expected, int) else expected)
    y = torch.randn(12, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    got = op(y[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, reference_downsample(y.numpy(), kern.numpy(), 3, expected), atol=1e-12)


def test_box_is_block_average():
    y = torch.randn(2, 3, 12, 8, dtype=torch.float64)
    expected = y.reshape(2, 3, 3, 4, 2, 4).mean(dim=(3, 5))
    torch.testing.assert_close(operator_of("box", scale=4)(y), expected)
    assert operator_of("box", scale=4).describe() == {"name": "box", "scale": 4, "kernel_size": 4, "origin": 0}


def test_gaussian_and_config():
    op = build_operator(OperatorConfig())
    assert op.describe() == {"name": "gaussian", "scale": 4, "kernel_size": 9, "origin": 4, "sigma": 1.0}
    assert torch.isclose(op.kernel.sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(op.kernel, op.kernel.T)
    torch.testing.assert_close(op.kernel, op.kernel.flip(0))
    assert op.kernel.argmax() == 4 * 9 + 4


def test_projection_consistency_float32():
    op = Downsampling.gaussian(1.0, 9, 4)
    proj = AffineProjection(op)
    g = torch.Generator().manual_seed(0)
    f = torch.randn(4, 3, 32, 32, generator=g)
    x = torch.rand(4, 3, 8, 8, generator=g)
    out = proj(f, x)
    assert out.dtype == torch.float32 and out.shape == f.shape
    err = op(out) - x
    assert err.abs().max() < 1e-5
    assert err.norm() / x.norm() < 1e-6
    # And it is a projection: already-consistent images are left unchanged.
    torch.testing.assert_close(proj(out, x), out, atol=1e-5, rtol=0)


def test_projection_float64_exact_and_pinv_float32_dtype():
    op = Downsampling.gaussian(1.0, 9, 4)
    f, x = torch.randn(2, 1, 16, 16, dtype=torch.float64), torch.randn(2, 1, 4, 4, dtype=torch.float64)
    assert (op(AffineProjection(op)(f, x)) - x).abs().max() < 1e-12
    assert op.pinv(x.float()).dtype == torch.float32
    assert op.adjoint(x.float()).dtype == torch.float32


def test_gradients_flow_through_projection():
    op = Downsampling.gaussian(1.0, 9, 4)
    proj = AffineProjection(op)
    H = W = 16
    f = torch.randn(1, 1, H, W, dtype=torch.float64, requires_grad=True)
    x = torch.randn(1, 1, H // 4, W // 4, dtype=torch.float64, requires_grad=True)
    A, _, P = dense_ops(op, H, W)
    N = np.eye(H * W) - P @ A  # I − A⁺A, symmetric

    proj(f, x).sum().backward()
    expected = N @ np.ones(H * W)
    assert np.abs(expected).max() > 1e-3  # the relation below is non-trivial
    np.testing.assert_allclose(f.grad.flatten().numpy(), expected, atol=1e-10)

    f.grad, x.grad = None, None
    wgt = torch.randn(1, 1, H, W, dtype=torch.float64)
    (proj(f, x) * wgt).sum().backward()
    np.testing.assert_allclose(f.grad.flatten().numpy(), N.T @ wgt.flatten().numpy(), atol=1e-10)
    np.testing.assert_allclose(x.grad.flatten().numpy(), P.T @ wgt.flatten().numpy(), atol=1e-10)


def test_batch_and_channels_independent():
    op = Downsampling(random_kernel(5, seed=4), 2)
    proj = AffineProjection(op)
    f, x = torch.randn(3, 2, 10, 12, dtype=torch.float64), torch.randn(3, 2, 5, 6, dtype=torch.float64)
    for fn, args in [(op, (f,)), (op.adjoint, (x,)), (op.pinv, (x,)), (proj, (f, x))]:
        full = fn(*args)
        for b in range(3):
            for c in range(2):
                item = fn(*(a[b : b + 1, c : c + 1] for a in args))
                torch.testing.assert_close(full[b : b + 1, c : c + 1], item, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda op: op(torch.zeros(1, 1, 30, 32)), "30x32.*scale 4"),
        (lambda op: op(torch.zeros(1, 1, 32, 31)), "32x31.*scale 4"),
        (lambda op: op(torch.zeros(1, 1, 4, 4)), "4x4.*9x9.*scale 4"),
        (lambda op: op.pinv(torch.zeros(1, 1, 2, 2)), "2x2.*scale 4"),
        (lambda op: op.adjoint(torch.zeros(1, 1, 2, 2)), "2x2.*scale 4"),
        (lambda op: op(torch.zeros(32, 32)), "4-D"),
        (lambda op: op.pinv(torch.zeros(1, 8, 8)), "4-D"),
        (lambda op: op.lr_shape((1, 1, 30, 32)), "30x32.*scale 4"),
        (lambda op: AffineProjection(op)(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 4, 8)), "scale 4"),
        (lambda op: AffineProjection(op)(torch.zeros(1, 1, 30, 32), torch.zeros(1, 1, 8, 8)), "30x32.*scale 4"),
        (lambda op: AffineProjection(op)(torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 8, 8)), "scale 4"),
    ],
)
def test_bad_shapes_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call(Downsampling.gaussian(1.0, 9, 4))


def test_bad_kernels_rejected():
    for kernel in (torch.ones(3), torch.ones(2, 3, 4), torch.ones(0, 3)):
        with pytest.raises(ValueError, match="2-D"):
            Downsampling(kernel, 2)
    for kernel in (-torch.ones(3, 3), torch.zeros(3, 3), torch.tensor([[1.0, float("nan")]])):
        with pytest.raises(ValueError, match="positive sum"):
            Downsampling(kernel, 2)
    for origin in (3, (0, 4), (-1, 0)):
        with pytest.raises(ValueError, match="origin"):
            Downsampling(torch.ones(3, 4), 2, origin=origin)
    with pytest.raises(ValueError, match="16x16 is smaller than the 3x17 kernel"):
        Downsampling(torch.ones(3, 17), 2)(torch.zeros(1, 1, 16, 16))


@pytest.mark.parametrize("HW", [(8, 8), (8, 12)])
def test_rank_deficient_kernel_is_pseudo_inverse(HW):
    # Taps at ±1 only, stride 2: each LR pixel sees odd HR pixels only, and the 1-D spectrum cos(ω)
    # vanishes at both aliases of ω = π/2, so A Aᵀ is singular: a true inverse does not exist.
    t = torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64)
    op = Downsampling(torch.outer(t, t), 2)
    A, At, P = dense_ops(op, *HW)
    n_lr = A.shape[0]
    rank = np.linalg.matrix_rank(A)
    assert rank < n_lr
    assert np.linalg.matrix_rank(P) == rank
    assert np.isfinite(P).all()
    np.testing.assert_allclose(P, np.linalg.pinv(A), atol=1e-10)
    assert_penrose(A, P, atol=1e-10)
    # The projection still lands exactly on the range of A: A g = (A A⁺) x, the orthogonal projection of x.
    x = torch.randn(1, 1, HW[0] // 2, HW[1] // 2, dtype=torch.float64)
    g = AffineProjection(op)(torch.randn(1, 1, *HW, dtype=torch.float64), x)
    np.testing.assert_allclose(op(g).flatten().numpy(), A @ P @ x.flatten().numpy(), atol=1e-10)


# ---- cubic upsampling on A's grid -------------------------------------------------------------------------


@pytest.mark.parametrize("boundary", ["circular", "replicate"])
def test_cubic_upsample_interpolates_the_lr_pixels_and_keeps_constants(boundary):
    from affsr.operators.interpolation import cubic_upsample

    x = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    up = cubic_upsample(x, 4, boundary=boundary)
    assert up.shape == (2, 3, 20, 24) and up.dtype == torch.float64
    assert torch.allclose(up[..., ::4, ::4], x, atol=1e-12)  # HR pixel s·i is LR pixel i (A's grid)
    flat = cubic_upsample(torch.full((1, 1, 4, 4), 0.3), 4, boundary=boundary)
    assert torch.allclose(flat, torch.full_like(flat, 0.3), atol=1e-6)


def test_cubic_upsample_boundaries_differ_only_at_the_edges():
    from affsr.operators.interpolation import cubic_upsample

    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    circular, replicate = cubic_upsample(x, 4), cubic_upsample(x, 4, boundary="replicate")
    assert torch.allclose(circular[..., 8:24, 8:24], replicate[..., 8:24, 8:24])
    assert not torch.allclose(circular[..., :2, :], replicate[..., :2, :])
    # replicate reads only the image itself: changing the far edge leaves the near edge alone
    y = x.clone()
    y[..., -1] += 1.0
    assert torch.equal(cubic_upsample(y, 4, boundary="replicate")[..., :4], replicate[..., :4])
    assert not torch.equal(cubic_upsample(y, 4)[..., :4], circular[..., :4])
    with pytest.raises(ValueError, match="boundary"):
        cubic_upsample(x, 4, boundary="reflect")


def _same_operator(a: Downsampling, b: Downsampling) -> None:
    assert torch.equal(a.kernel, b.kernel)
    assert (a.scale, a.origin, a.name, a.sigma, a.details) == (b.scale, b.origin, b.name, b.sigma, b.details)
    assert a.describe() == b.describe()



# ---- A from its settings and from its description (build_operator, operator_from_description) ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg, kernel, details", [
    (OperatorConfig(), lambda: kernels.gaussian(1.0, 9), {"sigma": 1.0}),
    (OperatorConfig(sigma=1.7, size=7, scale=2), lambda: kernels.gaussian(1.7, 7), {"sigma": 1.7}),
    (OperatorConfig(kind="box", scale=3), lambda: kernels.box(3), {}),
    (OperatorConfig(kind="area", scale=3), lambda: kernels.box(3), {}),
    (OperatorConfig(kind="bicubic", scale=2), lambda: kernels.bicubic(2), {}),
    (OperatorConfig(kind="motion", length=6.0, angle=45.0, scale=3), lambda: kernels.motion(6.0, 45.0),
     {"length": 6.0, "angle": 45.0}),
    (OperatorConfig(sigma_x=2.0, sigma_y=0.5, angle=10.0, scale=2),
     lambda: kernels.anisotropic_gaussian(2.0, 0.5, 10.0, 9), {"sigma_x": 2.0, "sigma_y": 0.5, "angle": 10.0}),
])
def test_build_operator_uses_the_kinds_kernel(cfg, kernel, details):
    """Each row of KINDS builds its kernel function's kernel and origin, named by its kind, with the
    settings the kind records."""
    built = build_operator(cfg)
    values, origin = kernel()
    assert torch.equal(built.kernel, values) and built.origin == origin
    assert (built.scale, built.name, built.details) == (cfg.scale, cfg.kind, details)


def test_build_operator_reads_every_setting(tmp_path):
    base = build_operator(OperatorConfig(sigma=1.0, size=9, scale=4))
    for changed in (OperatorConfig(sigma=2.0, size=9, scale=4), OperatorConfig(sigma=1.0, size=7, scale=4),
                    OperatorConfig(sigma=1.0, size=9, scale=2)):
        assert build_operator(changed).describe() != base.describe()
    from dataclasses import replace

    np.save(tmp_path / "k.npy", random_kernel((3, 5)).numpy())
    for cfg, changes in [
        (OperatorConfig(sigma_x=2.0, sigma_y=0.5, angle=10.0),
         ({"sigma_x": 2.5}, {"sigma_y": 0.7}, {"angle": 20.0}, {"size": 11}, {"scale": 2})),
        (OperatorConfig(kind="motion", length=5.0, angle=10.0), ({"length": 6.0}, {"angle": 20.0}, {"scale": 2})),
        (OperatorConfig(kind="file", kernel_file=str(tmp_path / "k.npy")), ({"origin": (0, 0)}, {"scale": 2})),
    ]:
        for change in changes:
            assert build_operator(cfg).describe() != build_operator(replace(cfg, **change)).describe()


def _every_kind(tmp_path) -> list[Downsampling]:
    np.save(tmp_path / "k.npy", 3.0 * random_kernel((3, 5), seed=8).numpy())
    return [Downsampling.gaussian(1.0, 9, 4), Downsampling.gaussian(0.6, 5, 2), operator_of("box", scale=4),
            operator_of("box", scale=2), operator_of("area", scale=3), operator_of("bicubic", scale=4), operator_of("bicubic", scale=3),
            operator_of("motion", length=7.0, angle=0.0, scale=2), operator_of("motion", length=5.5, angle=33.0, scale=3),
            operator_of("gaussian", sigma_x=2.0, sigma_y=0.7, angle=-20.0, size=11, scale=4),
            build_operator(OperatorConfig(kind="file", kernel_file=str(tmp_path / "k.npy"), scale=2)),
            build_operator(OperatorConfig(kind="file", kernel_file=str(tmp_path / "k.npy"), origin=(2, 0), scale=3))]


def test_operator_from_description_reproduces_every_kind_through_json(tmp_path):
    import json

    for op in _every_kind(tmp_path):
        _same_operator(operator_from_description(op.describe()), op)
        _same_operator(operator_from_description(json.loads(json.dumps(op.describe()))), op)


def test_descriptions_of_the_studys_operators_are_unchanged(tmp_path):
    """Data manifests compare these dicts: the old kinds keep their old descriptions, key for key."""
    assert build_operator(OperatorConfig()).describe() == {"name": "gaussian", "scale": 4, "kernel_size": 9,
                                                           "origin": 4, "sigma": 1.0}
    assert list(build_operator(OperatorConfig()).describe()) == ["name", "scale", "kernel_size", "origin", "sigma"]
    assert operator_of("box", scale=4).describe() == {"name": "box", "scale": 4, "kernel_size": 4, "origin": 0}
    file = _every_kind(tmp_path)[-1].describe()
    assert (file["kernel_size"], file["origin"]) == ([3, 5], [2, 0])
    assert np.asarray(file["kernel"]).sum() == pytest.approx(1.0, abs=1e-12)  # the normalised values


@pytest.mark.parametrize(
    "description",
    [
        {},
        {"name": "gaussian", "scale": 4, "kernel_size": 9},  # no sigma: no default filled in
        {"name": "gaussian", "sigma": 1.0, "kernel_size": 9},  # no scale
        {"name": "lanczos", "scale": 4, "kernel_size": 9},  # unknown kind
        {"name": "gaussian", "scale": 4, "kernel_size": 9, "sigma": -1.0},  # out of range
        {"name": "box", "scale": 0, "kernel_size": 0},
        {"name": "custom", "scale": 4, "kernel_size": 9, "origin": 4},  # describe() of a hand-made kernel
        {"name": "gaussian", "scale": 4, "kernel_size": 9, "origin": 4, "sigma_x": 2.0, "angle": 0.0},  # no sigma_y
        {"name": "motion", "scale": 4, "kernel_size": [1, 9], "origin": [0, 4]},  # no length
        {"name": "file", "scale": 2, "kernel_size": 2, "origin": 0},  # no kernel values
        {"name": "file", "scale": 2, "kernel_size": 2, "origin": 0, "kernel": [[1.0, float("nan")], [0, 0]]},
        None,
        "gaussian",
    ],
)
def test_broken_operator_description_is_a_config_error(description):
    with pytest.raises(ConfigError, match="not a description of an operator A"):
        operator_from_description(description)


@pytest.mark.parametrize("change", [{"origin": 2}, {"kernel_size": 7}, {"extra": 1}, {"name": "area"}])
@pytest.mark.parametrize("op", [operator_of("box", scale=4), operator_of("bicubic", scale=2), operator_of("motion", length=5.0, angle=10.0, scale=2)],
                         ids=lambda op: op.name)
def test_a_description_affsr_cannot_rebuild_exactly_is_refused(change, op):
    """Not silently replaced by the standard operator (another origin or kernel would be another A)."""
    description = {**op.describe(), **change}
    if description == op.describe() or (op.name == "box" and change == {"name": "area"}):
        return  # area rebuilt under its own name: not a mismatch
    with pytest.raises(ConfigError, match="cannot be rebuilt"):
        operator_from_description(description)


# ---- the reflect boundary (affsr.operators.reflect) ------------------------------------------------------------

REFLECT = {"gauss1.0": lambda s: Downsampling(Downsampling.gaussian(1.0, 9, s).kernel, s, boundary="reflect"),
           "bicubic": lambda s: build_operator(OperatorConfig(kind="bicubic", scale=s, boundary="reflect"))}


def reference_reflect(y: np.ndarray, op: Downsampling) -> np.ndarray:
    """A by its definition: numpy's 'symmetric' padding (scipy.ndimage 'reflect'), then the strided correlation."""
    (kh, kw), (oy, ox), s = op.kernel_shape, op.origin, op.scale
    yp = np.pad(y, ((oy, kh - 1 - oy), (ox, kw - 1 - ox)), mode="symmetric")
    k = op.kernel.numpy()
    return np.array([[(k * yp[s * i:s * i + kh, s * j:s * j + kw]).sum() for j in range(y.shape[1] // s)]
                     for i in range(y.shape[0] // s)])


@pytest.mark.parametrize("HW", [(16, 16), (24, 20)])
@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("kname", list(REFLECT))
def test_reflect_boundary_dense_against_numpy(kname, scale, HW):
    op = REFLECT[kname](scale)
    A, At, P = dense_ops(op, *HW)
    y = np.random.default_rng(0).random(HW)
    np.testing.assert_allclose(op(torch.tensor(y)[None, None])[0, 0].numpy(), reference_reflect(y, op), atol=1e-14)
    np.testing.assert_allclose(At, A.T, atol=1e-15)  # adjoint = the transpose (margin folded back)
    np.testing.assert_allclose(P, np.linalg.pinv(A), atol=1e-10)
    assert_penrose(A, P, atol=1e-10)
    assert not np.allclose(A, dense(Downsampling(op.kernel, scale, op.origin), HW))  # not the circular A


def test_reflect_pinv_float32_gradients_and_iterations():
    from affsr.operators import reflect as boundary
    op = REFLECT["gauss1.0"](4)
    x = torch.rand(2, 3, 8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    u, iterations = boundary.solve_gram(op, x)
    assert iterations <= 20  # the circular FFT inverse is a good preconditioner
    torch.testing.assert_close(op(op.pinv(x)), x, rtol=0, atol=1e-13)
    p32 = op.pinv(x.float())
    assert p32.dtype == torch.float32
    torch.testing.assert_close(p32, op.pinv(x).float())
    small = Downsampling(op.kernel, 2, boundary="reflect")
    xs, ys = (torch.rand(1, 1, n, n, dtype=torch.float64, requires_grad=True) for n in (5, 10))
    assert torch.autograd.gradcheck(small.pinv, (xs,)) and torch.autograd.gradcheck(small, (ys,))
    projected = AffineProjection(op)(torch.rand(2, 3, 32, 24, dtype=torch.float64), x)
    torch.testing.assert_close(op(projected), x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shift", [1, 2])
def test_reflect_rank_deficient_is_pseudo_inverse(shift):
    # a shift by 1: LR columns 0 and 1 both read HR column 0 (the mirrored −1), so A Aᵀ is singular (by 2:
    # columns 0/3 and 1/2 of the LR read the same HR columns, twice over a 2-tap blur); CG on A Aᵀ cannot
    # converge and A⁺ comes from CGLS, against numpy's dense pinv and the Penrose conditions
    kernel = torch.tensor([[1.0, 0.0]]) if shift == 1 else torch.tensor([[0.25, 0.25], [0.25, 0.25]]).repeat(1, 2)
    kernel = torch.cat([kernel, torch.zeros_like(kernel)], dim=1) if shift == 2 else kernel
    op = Downsampling(kernel, 1, origin=(0, kernel.shape[1] - 1), boundary="reflect")
    HW = (4, 6) if shift == 1 else (6, 8)
    A, At, P = dense_ops(op, *HW)
    assert np.linalg.matrix_rank(A) < A.shape[0]
    np.testing.assert_allclose(P, np.linalg.pinv(A), atol=1e-10)
    assert_penrose(A, P, atol=1e-10)
    xs = torch.rand(1, 1, *op.lr_shape(HW), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op.pinv, (xs,))  # backward: (Aᵀ)⁺ g, also by CGLS


def test_reflect_boundary_settings_and_description():
    circ, refl = build_operator(OperatorConfig()), build_operator(OperatorConfig(boundary="reflect"))
    assert "boundary" not in circ.describe() and "boundary" not in OperatorConfig().recorded()
    assert refl.describe() == {**circ.describe(), "boundary": "reflect"}
    assert OperatorConfig(boundary="reflect").recorded()["boundary"] == "reflect"
    again = operator_from_description(json.loads(json.dumps(refl.describe())))
    assert again.boundary == "reflect" and again.describe() == refl.describe()
    assert operator_from_description(circ.describe()).boundary == "circular"
    with pytest.raises(ValueError, match="boundary"):
        OperatorConfig(boundary="periodic")
    with pytest.raises(ValueError, match="boundary"):
        Downsampling.gaussian(1.0, 9, 4).__class__(torch.ones(3, 3), 2, boundary="wrap")
    with pytest.raises(ConfigError):
        operator_from_description({**circ.describe(), "boundary": "wrap"})
