"""Downsampling operator A, its adjoint Aᵀ, the exact pseudo-inverse A⁺ and the affine projection layer.

The paper (Sønderby et al. 2017, Eq. 7) makes every network output consistent with its LR input by
construction: g(x) = A⁺x + (I − A⁺A) f, where f is the network's raw HR output. Then A g = A A⁺ x = x for
every x in the range of A, so the generator can only choose *which* consistent image to return. This needs A⁺
exactly (an approximate inverse would leave a residual A g − x the training objective silently absorbs).

Model of A. Images are treated as periodic (circular boundary) so that A is a structured matrix we can
invert in closed form. A = S∘K: K is a per-channel circular *correlation* with the (k, k) kernel, S keeps
every s-th pixel. Precisely, with o = origin,

    (A y)[i, j] = Σ_{a,b} kernel[a, b] · y[(s·i + a − o) mod H, (s·j + b − o) mod W],

i.e. tap `origin` sits on HR pixel s·i (this equals a true convolution with the flipped kernel; for the
symmetric Gaussian the two coincide). This is exactly F.pad(circular, o left / k−1−o right) followed by
F.conv2d(stride=s) without flipping, because conv2d itself computes a correlation.

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

from affsr.errors import ConfigError

if TYPE_CHECKING:
    from affsr.config import OperatorConfig

Shape = tuple[int, ...]


class Downsampling:
    """Linear operator A = stride-s subsampling ∘ circular correlation with a (k, k) kernel, per channel."""

    tol: float = 1e-10  # relative eigenvalue cut-off for (A Aᵀ)⁺; eigenvalues of A Aᵀ are σ²(A)

    def __init__(self, kernel: Tensor, scale: int, origin: int | None = None, name: str = "custom"):
        kernel = torch.as_tensor(kernel).detach()
        if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
            raise ValueError(f"kernel must be a square 2-D (k, k) tensor, got shape {tuple(kernel.shape)}")
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        if (kernel < 0).any():
            raise ValueError("kernel must be non-negative")
        k = kernel.shape[0]
        origin = (k - 1) // 2 if origin is None else int(origin)
        if not 0 <= origin < k:
            raise ValueError(f"origin {origin} outside kernel of size {k}")
        # Kept in float64 on CPU as the reference copy; per-dtype/device copies are cached in _weights.
        self.kernel: Tensor = kernel.to(torch.float64).clone()
        self.scale: int = int(scale)
        self.origin: int = origin
        self.name = name
        self.sigma: float | None = None
        self._weights: dict[tuple, Tensor] = {}
        self._spectra: dict[tuple, Tensor] = {}  # (h, w, device) -> Ĝ⁺ on the LR grid, float64

    # ---- constructors -------------------------------------------------------------------------------
    @classmethod
    def gaussian(cls, sigma: float = 1.0, size: int = 9, scale: int = 4) -> "Downsampling":
        """Normalised separable Gaussian, centred on tap (size−1)//2. The paper uses 9x9, stride 4."""
        if sigma <= 0 or size < 1:
            raise ValueError(f"gaussian needs sigma > 0 and size >= 1, got sigma={sigma}, size={size}")
        t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
        g = torch.exp(-(t**2) / (2 * sigma**2))
        op = cls(torch.outer(g, g) / torch.outer(g, g).sum(), scale, name="gaussian")
        op.sigma = float(sigma)
        return op

    @classmethod
    def box(cls, scale: int) -> "Downsampling":
        """Block average: LR pixel i is the mean of HR pixels s·i … s·i+s−1 (in both directions)."""
        return cls(torch.ones(scale, scale, dtype=torch.float64) / scale**2, scale, origin=0, name="box")

    @classmethod
    def from_config(cls, kind: str, scale: int, sigma: float = 1.0, size: int = 9) -> "Downsampling":
        if kind == "gaussian":
            return cls.gaussian(sigma=sigma, size=size, scale=scale)
        if kind == "box":
            return cls.box(scale)
        raise ValueError(f"unknown downsampling kind {kind!r}; allowed kinds: 'gaussian', 'box'")

    def describe(self) -> dict:
        d = {"name": self.name, "scale": self.scale, "kernel_size": self.kernel_size, "origin": self.origin}
        if self.sigma is not None:
            d["sigma"] = self.sigma
        return d

    def __repr__(self) -> str:
        return f"Downsampling({', '.join(f'{k}={v}' for k, v in self.describe().items())})"

    # ---- shapes ---------------------------------------------------------------------------------------
    @property
    def kernel_size(self) -> int:
        return self.kernel.shape[0]

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
        s, k = self.scale, self.kernel_size
        if H % s or W % s:
            raise ValueError(f"{what} {H}x{W} is not divisible by scale {s}")
        # Circular padding wraps at most once, so the image must cover the kernel support.
        if H < k or W < k:
            raise ValueError(f"{what} {H}x{W} is smaller than the {k}x{k} kernel (scale {s})")

    @staticmethod
    def _check_4d(t: Tensor, what: str) -> None:
        if t.ndim != 4:
            raise ValueError(f"{what} must be a 4-D (B, C, H, W) tensor, got shape {tuple(t.shape)}")

    def _weight(self, channels: int, like: Tensor) -> Tensor:
        """Depthwise conv weight (C, 1, k, k) in the dtype/device of `like`."""
        key = (like.dtype, like.device)
        if key not in self._weights:
            self._weights[key] = self.kernel.to(dtype=like.dtype, device=like.device)[None, None]
        return self._weights[key].expand(channels, 1, -1, -1)

    # ---- the operators ------------------------------------------------------------------------------
    def __call__(self, y: Tensor) -> Tensor:
        """A·y: (B, C, H, W) -> (B, C, H/s, W/s)."""
        self._check_4d(y, "HR input")
        self._check_hr(*y.shape[-2:])
        k, o = self.kernel_size, self.origin
        # Pad (left, right, top, bottom): padded index p holds original pixel (p − o) mod H.
        yp = F.pad(y, (o, k - 1 - o, o, k - 1 - o), mode="circular")
        return F.conv2d(yp, self._weight(y.shape[1], y), stride=self.scale, groups=y.shape[1])

    def adjoint(self, x: Tensor) -> Tensor:
        """Aᵀ·x: (B, C, h, w) -> (B, C, h·s, w·s); the exact transpose of __call__."""
        self._check_4d(x, "LR input")
        s, k, o = self.scale, self.kernel_size, self.origin
        H, W = x.shape[-2] * s, x.shape[-1] * s
        self._check_hr(H, W, what=f"LR size {x.shape[-2]}x{x.shape[-1]} gives HR size")
        # Transpose of (strided correlation on the padded image): lands on padded coordinates,
        # of size (h−1)s + k; output_padding s−1 extends it to the full padded size H + k − 1.
        z = F.conv_transpose2d(x, self._weight(x.shape[1], x), stride=s, groups=x.shape[1], output_padding=s - 1)
        # Transpose of circular padding: fold padded index p back onto pixel (p − o) mod H.
        return self._fold(self._fold(z, H, o, dim=-2), W, o, dim=-1)

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
    taps = torch.arange(k.shape[0], dtype=torch.float64) - op.origin
    total = float(k.sum())
    return float((k.sum(1) * taps).sum()) / total, float((k.sum(0) * taps).sum()) / total


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
    """A from the ``operator`` settings (:class:`affsr.config.OperatorConfig`: params.yaml, a run's
    settings or a checkpoint's) — the one place those settings become an operator."""
    return Downsampling.from_config(cfg.kind, cfg.scale, sigma=cfg.sigma, size=cfg.size)


def operator_from_description(description: dict) -> Downsampling:
    """A from the description a data set's manifest records (``Downsampling.describe()``): the operator
    the data were made with, with no default filled in."""
    try:
        kind = description["name"]
        sigma = description["sigma"] if kind == "gaussian" else 1.0
        op = Downsampling.from_config(kind, description["scale"], sigma=sigma, size=description["kernel_size"])
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"not a description of an operator A: {description!r} ({err})") from None
    if op.describe() != description:  # e.g. another origin: not an operator affsr can rebuild
        raise ConfigError(f"operator {description!r} cannot be rebuilt (affsr builds {op.describe()!r})")
    return op
