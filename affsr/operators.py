"""Downsampling operator A, its adjoint Aᵀ, the exact pseudo-inverse A⁺ and the affine projection layer.

The paper (Sønderby et al. 2017, Eq. 7) makes every network output consistent with its LR input by
construction: g(x) = A⁺x + (I − A⁺A) f, where f is the network's raw HR output. Then A g = A A⁺ x = x for
every x in the range of A, so the generator can only choose *which* consistent image to return. This needs A⁺
exactly (an approximate inverse would leave a residual A g − x the training objective silently absorbs).

Model of A. Images are treated as periodic (circular boundary) so that A is a structured matrix we can
invert in closed form. A = S∘K: K is a per-channel circular *correlation* with a (kh, kw) kernel (any
real taps with a positive sum: rectangular, asymmetric, with negative lobes), S keeps every s-th pixel.
Precisely, with (oy, ox) = origin,

    (A y)[i, j] = Σ_{a,b} kernel[a, b] · y[(s·i + a − oy) mod H, (s·j + b − ox) mod W],

i.e. tap `origin` sits on HR pixel s·i (this equals a true convolution with the flipped kernel; for the
symmetric Gaussian the two coincide). This is exactly F.pad(circular, oy top / kh−1−oy bottom, likewise
ox, kw) followed by F.conv2d(stride=s) without flipping, because conv2d itself computes a correlation.

Built-in operators (``operator.kind``; kernels and their phase in :mod:`affsr.kernels`): ``gaussian``
(isotropic, the paper's, or anisotropic with sigma_x / sigma_y / angle; LR pixel i centred on HR pixel s·i),
``box`` = ``area`` (s × s block mean = PIL BOX; centred on s·i + (s − 1)/2), ``bicubic`` (PIL BICUBIC /
MATLAB imresize, a = −0.5, support 2s; centred on s·i + (s − 1)/2), ``motion`` (line of `length` pixels at
`angle`; centred on s·i) and ``file`` (a 2-D .npy kernel, normalised to sum 1; its origin tap on s·i).

Why A⁺ is cheap. A shift by s HR pixels commutes with A as a shift by one LR pixel, so A Aᵀ is
shift-invariant on the LR grid: a (block-)circulant matrix, diagonalised by the 2-D DFT of the LR grid.
Its eigenvalues Ĝ are the DFT of g = A Aᵀ δ (δ = unit impulse on the LR grid); they are real and ≥ 0
because A Aᵀ is symmetric PSD. The pseudo-inverse of a normal matrix inverts its non-zero eigenvalues and
keeps the zeros, so (A Aᵀ)⁺ is the circulant with eigenvalues 1/Ĝ where Ĝ > tol·max Ĝ and 0 elsewhere.
That threshold is what makes this a *pseudo*-inverse when the aliased kernel spectrum vanishes (kernels
with spectral zeros give a rank-deficient A). Finally A⁺ = Aᵀ (A Aᵀ)⁺ holds for every matrix, hence

    pinv(x) = adjoint(ifft2(fft2(x) · Ĝ⁺)).

Ĝ⁺ is computed once per (h, w, device) in float64 and applied in the input's dtype. Everything is built
from differentiable torch ops, so gradients flow through the projection to f (and to x).
"""

from __future__ import annotations

import math

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from affsr import boundary as _boundary, kernels
from affsr.errors import ConfigError

if TYPE_CHECKING:
    from affsr.config import OperatorConfig

Shape = tuple[int, ...]


class Downsampling:
    """Linear operator A = stride-s subsampling ∘ circular correlation with a (kh, kw) kernel, per channel.

    ``origin``: the tap on HR pixel s·i, (oy, ox) or one int for both axes (default: the centre tap
    ((kh − 1)//2, (kw − 1)//2)). ``name`` and ``details`` (the builder's settings) are what
    :meth:`describe` records; the constructors below set them, a hand-made kernel is ``custom``.
    ``boundary``: ``circular`` (the default, as above) or ``reflect`` (:mod:`affsr.boundary`).
    """

    tol: float = 1e-10  # relative eigenvalue cut-off for (A Aᵀ)⁺; eigenvalues of A Aᵀ are σ²(A)

    def __init__(self, kernel: Tensor, scale: int, origin: int | tuple[int, int] | None = None,
                 name: str = "custom", details: dict | None = None, boundary: str = "circular"):
        kernel = torch.as_tensor(kernel).detach()
        if kernel.ndim != 2 or min(kernel.shape) < 1:
            raise ValueError(f"kernel must be a 2-D (kh, kw) tensor, got shape {tuple(kernel.shape)}")
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        if not torch.isfinite(kernel).all() or not kernel.sum() > 0:
            raise ValueError("kernel must be finite with a positive sum (a blur)")
        kh, kw = kernel.shape
        if origin is None:
            origin = ((kh - 1) // 2, (kw - 1) // 2)
        oy, ox = (int(origin), int(origin)) if isinstance(origin, int) else (int(origin[0]), int(origin[1]))
        if not (0 <= oy < kh and 0 <= ox < kw):
            raise ValueError(f"origin {origin} outside kernel of size {kh}x{kw}")
        # Kept in float64 on CPU as the reference copy; per-dtype/device copies are cached in _weights.
        self.kernel: Tensor = kernel.to(torch.float64).clone()
        self.scale: int = int(scale)
        self.origin: tuple[int, int] = (oy, ox)
        self.name = name
        self.details: dict = dict(details or {})
        self.boundary: str = _boundary.check(boundary)
        self._weights: dict[tuple, Tensor] = {}
        self._spectra: dict[tuple, Tensor] = {}  # (h, w, device) -> Ĝ⁺ on the LR grid, float64

    # ---- constructors (the kernels: affsr.kernels) -----------------------------------------------------
    @classmethod
    def gaussian(cls, sigma: float = 1.0, size: int = 9, scale: int = 4) -> "Downsampling":
        """Normalised separable Gaussian, centred on tap (size−1)//2. The paper uses 9x9, stride 4."""
        kernel, origin = kernels.gaussian(sigma, size)
        return cls(kernel, scale, origin, name="gaussian", details={"sigma": float(sigma)})

    @classmethod
    def anisotropic_gaussian(cls, sigma_x: float, sigma_y: float, angle: float = 0.0, size: int = 9,
                             scale: int = 4) -> "Downsampling":
        """Gaussian with std sigma_x along ``angle`` degrees and sigma_y across it; equal sigmas give
        :meth:`gaussian` (and its description)."""
        if sigma_x == sigma_y:
            return cls.gaussian(sigma_x, size, scale)
        kernel, origin = kernels.anisotropic_gaussian(sigma_x, sigma_y, angle, size)
        details = {"sigma_x": float(sigma_x), "sigma_y": float(sigma_y), "angle": float(angle)}
        return cls(kernel, scale, origin, name="gaussian", details=details)

    @classmethod
    def box(cls, scale: int, name: str = "box") -> "Downsampling":
        """Block average: LR pixel i is the mean of HR pixels s·i … s·i+s−1 (in both directions)."""
        kernel, origin = kernels.box(scale)
        return cls(kernel, scale, origin, name=name)

    @classmethod
    def bicubic(cls, scale: int) -> "Downsampling":
        """PIL's / MATLAB's antialiased bicubic reduction by ``scale`` (a = −0.5)."""
        kernel, origin = kernels.bicubic(scale)
        return cls(kernel, scale, origin, name="bicubic")

    @classmethod
    def motion(cls, length: float, angle: float, scale: int) -> "Downsampling":
        """Linear motion blur of ``length`` HR pixels at ``angle`` degrees."""
        kernel, origin = kernels.motion(length, angle)
        return cls(kernel, scale, origin, name="motion", details={"length": float(length), "angle": float(angle)})

    @classmethod
    def from_kernel(cls, kernel: Tensor, scale: int, origin: int | tuple[int, int] | None = None) -> "Downsampling":
        """Kind ``file``: a kernel given by its values, which the description records (so a data set made
        with it can be rebuilt without the file)."""
        kernel = torch.as_tensor(kernel, dtype=torch.float64)
        op = cls(kernel, scale, origin, name="file")
        op.details = {"kernel": op.kernel.tolist()}
        return op

    def describe(self) -> dict:
        """JSON-ready description; :func:`operator_from_description` rebuilds exactly this operator.
        ``kernel_size`` and ``origin`` are ints for square kernels / equal origins, else [rows, columns]."""
        kh, kw = self.kernel.shape
        d = {"name": self.name, "scale": self.scale, "kernel_size": kh if kh == kw else [kh, kw],
             "origin": self.origin[0] if self.origin[0] == self.origin[1] else list(self.origin)}
        d.update(self.details)
        return d if self.boundary == "circular" else {**d, "boundary": self.boundary}

    @property
    def sigma(self) -> float | None:
        """The isotropic Gaussian's σ (HR pixels), None for every other kernel."""
        return self.details.get("sigma")

    def __repr__(self) -> str:
        return f"Downsampling({', '.join(f'{k}={v}' for k, v in self.describe().items())})"

    # ---- shapes ---------------------------------------------------------------------------------------
    @property
    def kernel_shape(self) -> tuple[int, int]:
        """(kh, kw)."""
        return tuple(self.kernel.shape)

    def hr_shape(self, lr_shape: Shape) -> Shape:
        """(…, h, w) -> (…, h·s, w·s)."""
        *lead, h, w = lr_shape
        return (*lead, h * self.scale, w * self.scale)

    def lr_shape(self, hr_shape: Shape) -> Shape:
        """(…, H, W) -> (…, H/s, W/s); ValueError if H or W is not a multiple of s."""
        *lead, H, W = hr_shape
        self._check_hr(H, W)
        return (*lead, H // self.scale, W // self.scale)

    def _check_hr(self, H: int, W: int, what: str = "HR size") -> None:
        s, (kh, kw) = self.scale, self.kernel_shape
        if H % s or W % s:
            raise ValueError(f"{what} {H}x{W} is not divisible by scale {s}")
        # Circular padding wraps at most once, so the image must cover the kernel support.
        if H < kh or W < kw:
            raise ValueError(f"{what} {H}x{W} is smaller than the {kh}x{kw} kernel (scale {s})")

    @staticmethod
    def _check_4d(t: Tensor, what: str) -> None:
        if t.ndim != 4:
            raise ValueError(f"{what} must be a 4-D (B, C, H, W) tensor, got shape {tuple(t.shape)}")

    def _weight(self, channels: int, like: Tensor) -> Tensor:
        """Depthwise conv weight (C, 1, kh, kw) in the dtype/device of `like`."""
        key = (like.dtype, like.device)
        if key not in self._weights:
            self._weights[key] = self.kernel.to(dtype=like.dtype, device=like.device)[None, None]
        return self._weights[key].expand(channels, 1, -1, -1)

    # ---- the operators ------------------------------------------------------------------------------
    def __call__(self, y: Tensor) -> Tensor:
        """A·y: (B, C, H, W) -> (B, C, H/s, W/s)."""
        self._check_4d(y, "HR input")
        self._check_hr(*y.shape[-2:])
        if self.boundary != "circular":
            return _boundary.apply(self, y)
        (kh, kw), (oy, ox) = self.kernel_shape, self.origin
        # Pad (left, right, top, bottom): padded index p holds original pixel (p − o) mod H.
        yp = F.pad(y, (ox, kw - 1 - ox, oy, kh - 1 - oy), mode="circular")
        return F.conv2d(yp, self._weight(y.shape[1], y), stride=self.scale, groups=y.shape[1])

    def adjoint(self, x: Tensor) -> Tensor:
        """Aᵀ·x: (B, C, h, w) -> (B, C, h·s, w·s); the exact transpose of __call__."""
        self._check_4d(x, "LR input")
        s, (oy, ox) = self.scale, self.origin
        H, W = x.shape[-2] * s, x.shape[-1] * s
        self._check_hr(H, W, what=f"LR size {x.shape[-2]}x{x.shape[-1]} gives HR size")
        if self.boundary != "circular":
            return _boundary.adjoint(self, x)
        # Transpose of (strided correlation on the padded image): lands on padded coordinates,
        # of size (h−1)s + kh; output_padding s−1 extends it to the full padded size H + kh − 1 (and for W).
        z = F.conv_transpose2d(x, self._weight(x.shape[1], x), stride=s, groups=x.shape[1], output_padding=s - 1)
        # Transpose of circular padding: fold padded index p back onto pixel (p − o) mod H.
        return self._fold(self._fold(z, H, oy, dim=-2), W, ox, dim=-1)

    @staticmethod
    def _fold(z: Tensor, n: int, o: int, dim: int) -> Tensor:
        """Sum entries of `z` along `dim` whose padded index p maps to (p − o) mod n; result has size n."""
        L = z.shape[dim]
        reps = math.ceil(L / n)
        pad = [0, 0] * (-dim - 1) + [0, reps * n - L]  # right-pad `dim` (given as negative) to a multiple of n
        z = F.pad(z, pad)
        z = z.unflatten(dim, (reps, n)).sum(dim=dim - 1 if dim < 0 else dim)
        return torch.roll(z, shifts=-o, dims=dim)

    def _inv_spectrum(self, h: int, w: int, device: torch.device) -> Tensor:
        """Ĝ⁺: eigenvalues of (A Aᵀ)⁺ on the (h, w) LR grid, float64, shape (h, w)."""
        key = (h, w, str(device))
        if key not in self._spectra:
            delta = torch.zeros(1, 1, h, w, dtype=torch.float64, device=device)
            delta[..., 0, 0] = 1.0
            g = self(self.adjoint(delta))[0, 0]  # first column of the circulant A Aᵀ
            G = torch.fft.fft2(g).real  # real up to round-off: g is symmetric about 0 (mod h, w)
            keep = G > self.tol * G.max()
            self._spectra[key] = torch.where(keep, 1.0 / torch.where(keep, G, 1.0), 0.0)
        return self._spectra[key]

    def pinv(self, x: Tensor) -> Tensor:
        """A⁺·x = Aᵀ (A Aᵀ)⁺ x: (B, C, h, w) -> (B, C, h·s, w·s), exact Moore–Penrose pseudo-inverse."""
        self._check_4d(x, "LR input")
        h, w = x.shape[-2:]
        self._check_hr(h * self.scale, w * self.scale, what=f"LR size {h}x{w} gives HR size")
        if self.boundary != "circular":
            return _boundary.pinv(self, x)
        Ginv = self._inv_spectrum(h, w, x.device)[:, : w // 2 + 1].to(x.dtype)
        # rfft is enough: x is real and Ĝ⁺ is real and symmetric, so the product's inverse is real.
        u = torch.fft.irfft2(torch.fft.rfft2(x) * Ginv, s=(h, w))
        return self.adjoint(u)


class AffineProjection(torch.nn.Module):
    """Eq. 7: g = A⁺x + (I − A⁺A) f, so that A g = x exactly (x in the range of A)."""

    def __init__(self, op: Downsampling):
        super().__init__()
        self.op = op

    def forward(self, f: Tensor, x: Tensor) -> Tensor:
        """f: (B, C, H, W) raw HR output; x: (B, C, H/s, W/s) LR input -> (B, C, H, W)."""
        self.op._check_4d(f, "HR input f")
        self.op._check_4d(x, "LR input x")
        expected = self.op.lr_shape(tuple(f.shape))
        if tuple(x.shape) != expected:
            raise ValueError(
                f"LR shape {tuple(x.shape)} does not match HR shape {tuple(f.shape)} at scale {self.op.scale} "
                f"(expected {expected})"
            )
        # One pinv on (x − A f) instead of two: A⁺x − A⁺A f = A⁺(x − A f) by linearity.
        return f + self.op.pinv(x - self.op(f))


# ---- cubic interpolation on A's grid ------------------------------------------------------------------


def grid_offset(op: Downsampling) -> tuple[float, float]:
    """(rows, columns) HR position of LR pixel 0 under A: the kernel's centroid relative to its origin
    tap (0 for the centred Gaussian; (s − 1)/2 for the box, whose LR pixel i averages HR pixels
    s·i … s·i + s − 1)."""
    k = op.kernel.to(torch.float64)
    rows = torch.arange(k.shape[0], dtype=torch.float64) - op.origin[0]
    cols = torch.arange(k.shape[1], dtype=torch.float64) - op.origin[1]
    total = float(k.sum())
    return float((k.sum(1) * rows).sum()) / total, float((k.sum(0) * cols).sum()) / total


def _keys_weights(t: float, a: float = -0.75) -> list[float]:
    """Keys cubic-convolution weights of the taps at −1, 0, 1, 2 for a sample at fraction t ∈ [0, 1)."""

    def w(d: float) -> float:
        d = abs(d)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a if d < 2 else 0.0

    return [w(1 + t), w(t), w(1 - t), w(2 - t)]


def _cubic_taps(scale: int, offset: float) -> tuple[Tensor, int, int]:
    """Per output phase r (HR pixel s·i + r reads LR coordinate i + (r − offset)/s) the cubic weights
    over the LR window i + lo … i + hi: (weights (s, hi − lo + 1), lo, hi)."""
    floors, weights = [], []
    for r in range(scale):
        q = (r - offset) / scale
        floors.append(math.floor(q))
        weights.append(_keys_weights(q - floors[-1]))
    lo, hi = min(floors) - 1, max(floors) + 2
    taps = torch.zeros(scale, hi - lo + 1, dtype=torch.float64)
    for r, (f, w) in enumerate(zip(floors, weights)):
        taps[r, f - 1 - lo:f + 3 - lo] = torch.tensor(w, dtype=torch.float64)
    return taps, lo, hi


def cubic_upsample(x: Tensor, scale: int, offset: tuple[float, float] = (0.0, 0.0),
                   boundary: str = "circular") -> Tensor:
    """Cubic upsampling on A's grid: (N, C, h, w) → (N, C, h·s, w·s), differentiable, dtype kept.

    LR pixel i sits on HR pixel s·i + offset (see :func:`grid_offset`); HR pixel j is sampled at LR
    coordinate u = (j − offset)/s with Keys' cubic convolution (a = −0.75, PyTorch's and OpenCV's
    choice), so at j = s·i it returns x_i exactly. ``circular`` matches A's boundary (the bicubic
    reference); ``replicate`` repeats edge pixels, for a network input skip that must not wrap around a
    tile. May overshoot the input's range near edges.
    """
    if boundary not in ("circular", "replicate"):
        raise ValueError(f"boundary must be 'circular' or 'replicate', got '{boundary}'")
    s = int(scale)
    (ty, loy, hiy), (tx, lox, hix) = _cubic_taps(s, float(offset[0])), _cubic_taps(s, float(offset[1]))
    # one depthwise conv on the LR grid gives every phase (channel c·s² + ry·s + rx), pixel shuffle
    # interleaves them: the separable kernel is the outer product of the row and column taps
    kernel = torch.einsum("ak,bl->abkl", ty, tx).reshape(s * s, 1, ty.shape[1], tx.shape[1])
    channels = x.shape[1]
    padded = F.pad(x, (-lox, hix, -loy, hiy), mode=boundary)
    weight = kernel.repeat(channels, 1, 1, 1).to(device=x.device, dtype=x.dtype)
    return F.pixel_shuffle(F.conv2d(padded, weight, groups=channels), s)


# ---- A from settings -----------------------------------------------------------------------------------


def build_operator(cfg: OperatorConfig) -> Downsampling:
    """A from the ``operator`` settings, with their ``boundary``; see :func:`_build_kind`."""
    op = _build_kind(cfg)
    op.boundary = _boundary.check(cfg.boundary)
    return op


def _build_kind(cfg: OperatorConfig) -> Downsampling:
    """A from the ``operator`` settings (:class:`affsr.config.OperatorConfig`: params.yaml, a run's
    settings or a checkpoint's) — the one place those settings become an operator. Kind ``file`` reads
    ``cfg.kernel_file`` (a ConfigError naming the file if it is not a usable kernel)."""
    kind, s = cfg.kind, cfg.scale
    if kind == "gaussian":
        return Downsampling.anisotropic_gaussian(cfg.sigma_x or cfg.sigma, cfg.sigma_y or cfg.sigma, cfg.angle,
                                                 cfg.size, s)
    if kind in ("box", "area"):
        return Downsampling.box(s, name=kind)
    if kind == "bicubic":
        return Downsampling.bicubic(s)
    if kind == "motion":
        return Downsampling.motion(cfg.length, cfg.angle, s)
    if kind == "file":
        kernel, origin = kernels.from_file(cfg.kernel_file, cfg.origin)
        return Downsampling.from_kernel(kernel, s, origin)
    raise ValueError(f"unknown operator kind {kind!r}")  # OperatorConfig refuses it first


def _from_description(d: dict) -> Downsampling:
    """The constructor call behind a description (KeyError for a missing setting: no default filled in)."""
    kind, s = d["name"], d["scale"]
    if kind == "gaussian" and "sigma" in d:
        return Downsampling.gaussian(d["sigma"], d["kernel_size"], s)
    if kind == "gaussian":
        return Downsampling.anisotropic_gaussian(d["sigma_x"], d["sigma_y"], d["angle"], d["kernel_size"], s)
    if kind in ("box", "area"):
        return Downsampling.box(s, name=kind)
    if kind == "bicubic":
        return Downsampling.bicubic(s)
    if kind == "motion":
        return Downsampling.motion(d["length"], d["angle"], s)
    if kind == "file":
        origin = d["origin"]
        return Downsampling.from_kernel(d["kernel"], s, origin if isinstance(origin, int) else tuple(origin))
    raise ValueError(f"unknown kind {kind!r}")


def operator_from_description(description: dict) -> Downsampling:
    """A from the description a data set's manifest records (``Downsampling.describe()``): the operator
    the data were made with, with no default filled in. Kind ``file`` needs no file: its description
    holds the (normalised) kernel values themselves, so moving or editing the .npy cannot change A."""
    try:
        op = _from_description(description)
        op.boundary = _boundary.check(description.get("boundary", "circular"))
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"not a description of an operator A: {description!r} ({err})") from None
    if op.describe() != description:  # e.g. another origin: not an operator affsr can rebuild
        raise ConfigError(f"operator {description!r} cannot be rebuilt (affsr builds {op.describe()!r})")
    return op
