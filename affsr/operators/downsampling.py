"""The downsampling operator A, its adjoint Aᵀ and its exact Moore–Penrose pseudo-inverse A⁺.

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

Built-in operators (``operator.kind``, :mod:`affsr.operators.kinds`; kernels and their phase in
:mod:`affsr.operators.kernels`): ``gaussian``
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

import torch
import torch.nn.functional as F
from torch import Tensor

from affsr.operators import kernels, reflect
from affsr.operators.linear_solvers import inverse_circulant_spectrum

Shape = tuple[int, ...]


class Downsampling:
    """Linear operator A = stride-s subsampling ∘ circular correlation with a (kh, kw) kernel, per channel.

    ``origin``: the tap on HR pixel s·i, (oy, ox) or one int for both axes (default: the centre tap
    ((kh − 1)//2, (kw − 1)//2)). ``name`` and ``details`` (the kind's settings) are what :meth:`describe`
    records; :func:`affsr.operators.kinds.build_operator` sets them, a hand-made kernel is ``custom``.
    ``boundary``: ``circular`` (the default, as above) or ``reflect`` (:mod:`affsr.operators.reflect`).
    """

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
        self.boundary: str = reflect.check(boundary)
        self._weights: dict[tuple, Tensor] = {}
        self._spectra: dict[tuple, Tensor] = {}  # (h, w, device) -> Ĝ⁺ on the LR grid, float64
        self.rank_deficient = False  # reflect boundary: set once CG on A Aᵀ failed (then A⁺ by CGLS)

    # ---- the paper's operator (every kind: affsr.operators.kinds.build_operator) ----------------------------
    @classmethod
    def gaussian(cls, sigma: float = 1.0, size: int = 9, scale: int = 4) -> "Downsampling":
        """The paper's A: a normalised separable Gaussian of std ``sigma`` HR pixels on a (size, size) grid,
        centred on tap (size−1)//2, stride ``scale`` (the paper: 9×9, stride 4; σ not stated, ours 1)."""
        kernel, origin = kernels.gaussian(sigma, size)
        return cls(kernel, scale, origin, name="gaussian", details={"sigma": float(sigma)})

    def describe(self) -> dict:
        """JSON-ready description; :func:`~affsr.operators.kinds.operator_from_description` rebuilds exactly this operator.
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
            return reflect.apply(self, y)
        return self._circular(y)

    def adjoint(self, x: Tensor) -> Tensor:
        """Aᵀ·x: (B, C, h, w) -> (B, C, h·s, w·s); the exact transpose of __call__."""
        self._check_4d(x, "LR input")
        H, W = x.shape[-2] * self.scale, x.shape[-1] * self.scale
        self._check_hr(H, W, what=f"LR size {x.shape[-2]}x{x.shape[-1]} gives HR size")
        if self.boundary != "circular":
            return reflect.adjoint(self, x)
        return self._circular_adjoint(x)

    def _circular(self, y: Tensor) -> Tensor:
        """A·y with the circular boundary (shapes checked by the caller)."""
        (kh, kw), (oy, ox) = self.kernel_shape, self.origin
        # Pad (left, right, top, bottom): padded index p holds original pixel (p − o) mod H.
        yp = F.pad(y, (ox, kw - 1 - ox, oy, kh - 1 - oy), mode="circular")
        return F.conv2d(yp, self._weight(y.shape[1], y), stride=self.scale, groups=y.shape[1])

    def _circular_adjoint(self, x: Tensor) -> Tensor:
        """Aᵀ·x with the circular boundary: the exact transpose of :meth:`_circular`."""
        s, (oy, ox) = self.scale, self.origin
        H, W = x.shape[-2] * s, x.shape[-1] * s
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

    def inverse_gram_spectrum(self, h: int, w: int, device: torch.device | str = "cpu") -> Tensor:
        """Ĝ⁺: the eigenvalues of (A Aᵀ)⁺ with the circular boundary on the (h, w) LR grid, float64 (h, w),
        cached. For the reflect boundary these are its circular twin's: the preconditioner of its solves."""
        key = (h, w, str(device))
        if key not in self._spectra:
            delta = torch.zeros(1, 1, h, w, dtype=torch.float64, device=device)
            delta[..., 0, 0] = 1.0
            first_column = self._circular(self._circular_adjoint(delta))[0, 0]  # of the circulant A Aᵀ
            self._spectra[key] = inverse_circulant_spectrum(first_column)
        return self._spectra[key]

    def pinv(self, x: Tensor) -> Tensor:
        """A⁺·x = Aᵀ (A Aᵀ)⁺ x: (B, C, h, w) -> (B, C, h·s, w·s), exact Moore–Penrose pseudo-inverse."""
        self._check_4d(x, "LR input")
        h, w = x.shape[-2:]
        self._check_hr(h * self.scale, w * self.scale, what=f"LR size {h}x{w} gives HR size")
        if self.boundary != "circular":
            return reflect.pinv(self, x)
        return self.adjoint(self.gram_inverse(x))

    def gram_inverse(self, x: Tensor) -> Tensor:
        """(A Aᵀ)⁺ x on the LR grid, circular boundary: (B, C, h, w) -> (B, C, h, w), by FFT (A⁺ = Aᵀ of this)."""
        h, w = x.shape[-2:]
        Ginv = self.inverse_gram_spectrum(h, w, x.device)[:, : w // 2 + 1].to(x.dtype)
        # rfft is enough: x is real and Ĝ⁺ is real and symmetric, so the product's inverse is real.
        return torch.fft.irfft2(torch.fft.rfft2(x) * Ginv, s=(h, w))
