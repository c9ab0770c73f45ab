"""Blur kernels of the downsampling operator A (:class:`affsr.operators.Downsampling`), in HR pixels.

Every builder returns ``(kernel, (oy, ox))``: a float64 (kh, kw) tensor and the *origin*, the tap that sits
on HR pixel s·i when LR pixel i is formed (A's correlation, see :mod:`affsr.operators`):

    (A y)[i, j] = Σ_{a,b} kernel[a, b] · y[s·i + a − oy, s·j + b − ox]   (indices mod H, W).

So LR pixel i is *centred* on HR position s·i + c, c the kernel's centroid relative to its origin
(:func:`affsr.operators.grid_offset`). The built-in kernels and their phase (LR pixel i centred on):

=============  ==============================================  ============  ===========================
kind           kernel                                          size          LR pixel i centred on
=============  ==============================================  ============  ===========================
gaussian       exp(−r²/2σ²), isotropic, normalised             size × size   HR pixel s·i
gaussian       anisotropic: σx along `angle`, σy across it     size × size   HR pixel s·i
box / area     mean of HR pixels s·i … s·i + s − 1 (PIL BOX)   s × s         HR position s·i + (s − 1)/2
bicubic        antialiased cubic, a = −0.5, support 2s (PIL    4s (4s − 1    HR position s·i + (s − 1)/2
               BICUBIC, MATLAB imresize)                       for odd s)
motion         line of `length` pixels at `angle`, bilinear    fits the      HR pixel s·i
               splats, normalised                              line
file           any 2-D array from an .npy file, normalised     as stored     the origin tap (default:
               to sum 1                                                      the centre tap)
=============  ==============================================  ============  ===========================

Angles are in degrees, counter-clockwise *as displayed* (rows grow downwards): 0° runs along +columns,
90° along −rows. ``box`` and ``area`` are the same operator: PIL's BOX reduction by an integer factor
averages exactly the s × s block s·i … s·i + s − 1 (checked in tests/test_kernels.py), so there is no phase
to tell them apart; both names are kept so params read as the user thinks. Kernels are built for integer
scales 2–8 (scale 1 works too: then A is a plain circular correlation).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from affsr.errors import ConfigError

Kernel = tuple[Tensor, tuple[int, int]]


def gaussian(sigma: float = 1.0, size: int = 9) -> Kernel:
    """Isotropic normalised Gaussian of std ``sigma`` HR pixels on a (size, size) grid, centred on tap
    (size − 1)//2 (for even ``size`` the peak lies half a pixel after the origin). The paper's 9 × 9 kernel."""
    if not sigma > 0 or size < 1:
        raise ValueError(f"gaussian needs sigma > 0 and size >= 1, got sigma={sigma}, size={size}")
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    # the outer product of the 1-D profile, as the study has always built it (bit for bit)
    return torch.outer(g, g) / torch.outer(g, g).sum(), ((size - 1) // 2, (size - 1) // 2)


def anisotropic_gaussian(sigma_x: float, sigma_y: float, angle: float = 0.0, size: int = 9) -> Kernel:
    """Normalised Gaussian with std ``sigma_x`` HR pixels along the direction ``angle`` (degrees,
    counter-clockwise as displayed) and ``sigma_y`` across it, on a (size, size) grid centred on tap
    (size − 1)//2. Equal sigmas give :func:`gaussian` exactly (the angle is then irrelevant)."""
    if not (sigma_x > 0 and sigma_y > 0) or size < 1:
        raise ValueError(f"gaussian needs sigma_x, sigma_y > 0 and size >= 1, got {sigma_x}, {sigma_y}, {size}")
    if sigma_x == sigma_y:
        return gaussian(sigma_x, size)
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    row, col = torch.meshgrid(t, t, indexing="ij")
    c, s = _cos_sin(angle)
    along = col * c - row * s  # (c, −s) in (column, row) coordinates points along `angle` on screen
    across = col * s + row * c
    k = torch.exp(-(along**2) / (2 * sigma_x**2) - across**2 / (2 * sigma_y**2))
    return k / k.sum(), ((size - 1) // 2, (size - 1) // 2)


def box(scale: int) -> Kernel:
    """Block average: LR pixel i is the mean of HR pixels s·i … s·i + s − 1 in each direction, centred on
    HR position s·i + (s − 1)/2. Equal to PIL's ``Image.BOX`` reduction by s (hence also kind ``area``)."""
    s = _scale(scale)
    return torch.ones(s, s, dtype=torch.float64) / s**2, (0, 0)


def _pil_cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic with PIL's/MATLAB's a = −0.5, support [−2, 2]."""
    x = np.abs(x)
    inner = ((a + 2) * x - (a + 3)) * x * x + 1
    outer = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, inner, np.where(x < 2, outer, 0.0))


def bicubic_taps(scale: int) -> tuple[np.ndarray, int]:
    """1-D antialiased cubic taps of reduction by s and their origin: HR pixel s·i + m (m = −origin …)
    gets weight cubic((m − (s − 1)/2)/s), normalised to sum 1, for every m with |m − (s − 1)/2| < 2s."""
    s = _scale(scale)
    centre = (s - 1) / 2
    lo, hi = math.floor(centre - 2 * s) + 1, math.ceil(centre + 2 * s) - 1
    w = _pil_cubic((np.arange(lo, hi + 1) - centre) / s)
    return w / w.sum(), -lo


def bicubic(scale: int) -> Kernel:
    """Antialiased bicubic reduction by s: what PIL's ``resize(..., Image.BICUBIC)`` and MATLAB's
    ``imresize`` do for an integer factor. Separable; LR pixel i is centred on HR position s·i + (s − 1)/2
    (pixel centres at half-integers, as both libraries place them), so the half-pixel phase of even s lives
    in the taps: 4s taps for even s (4s − 1 for odd s, whose end tap is 0), with negative lobes."""
    taps, origin = bicubic_taps(scale)
    t = torch.from_numpy(taps)
    return torch.outer(t, t), (origin, origin)


def motion(length: float, angle: float = 0.0) -> Kernel:
    """Linear motion blur: the uniform segment of ``length`` HR pixels through the origin tap in the
    direction ``angle`` (degrees, counter-clockwise as displayed), sampled 64 times per pixel of length
    and splatted bilinearly, normalised. The kernel is the smallest odd (kh, kw) holding the segment, and
    is point-symmetric about its centre tap (the origin), so LR pixel i is centred on HR pixel s·i."""
    if not length > 0:
        raise ValueError(f"motion needs length > 0, got {length}")
    c, s = _cos_sin(angle)
    half_h, half_w = math.ceil(length / 2 * abs(s)), math.ceil(length / 2 * abs(c))
    n = 64 * math.ceil(length)
    t = (np.arange(n) + 0.5) / n * length - length / 2  # midpoints: symmetric, |t| < length/2
    x, y = half_w + t * c, half_h - t * s
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    k = np.zeros((2 * half_h + 2, 2 * half_w + 2))  # one spare row/column for weight-0 splats at the edge
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(k, (y0 + dy, x0 + dx), wy * wx)
    k = k[: 2 * half_h + 1, : 2 * half_w + 1]
    k = (k + k[::-1, ::-1]) / 2  # exactly point-symmetric (sampling is, up to round-off)
    return torch.from_numpy(k / k.sum()), (half_h, half_w)


def from_file(path: str | Path, origin: tuple[int, ...] = ()) -> Kernel:
    """A kernel stored as a 2-D real .npy array (any sum > 0, normalised here to sum 1), read without
    pickles. ``origin``: () = the centre tap ((kh − 1)//2, (kw − 1)//2), (o,) = (o, o), or (oy, ox).
    A missing or unreadable file, another ndim, NaN/inf entries or a sum ≤ 0 are a one-line ConfigError."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot read a kernel .npy file ({err})") from None
    if array.ndim != 2 or min(array.shape) < 1:
        raise ConfigError(f"{path}: a kernel must be a 2-D array, got shape {array.shape}")
    if array.dtype.kind not in "fiu":
        raise ConfigError(f"{path}: a kernel must hold real numbers, got dtype {array.dtype}")
    kernel = torch.from_numpy(array.astype(np.float64))
    if not torch.isfinite(kernel).all():
        raise ConfigError(f"{path}: the kernel has NaN or infinite entries")
    if not kernel.sum() > 0:
        raise ConfigError(f"{path}: the kernel's sum must be > 0 (a blur), got {float(kernel.sum())}")
    kh, kw = kernel.shape
    oy, ox = {0: ((kh - 1) // 2, (kw - 1) // 2), 1: tuple(origin) * 2, 2: tuple(origin)}.get(len(origin), (-1, -1))
    if not (0 <= oy < kh and 0 <= ox < kw):
        raise ConfigError(f"{path}: origin {list(origin)} is not a tap of the {kh}x{kw} kernel")
    return kernel / kernel.sum(), (int(oy), int(ox))


def _cos_sin(angle: float) -> tuple[float, float]:
    """cos and sin of `angle` degrees, rounded so that multiples of 90° give exact 0 and ±1."""
    rad = math.radians(angle)
    return round(math.cos(rad), 15) + 0.0, round(math.sin(rad), 15) + 0.0


def _scale(scale: int) -> int:
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    return int(scale)
