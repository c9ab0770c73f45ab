"""Cubic interpolation on A's sampling grid: the generator's skip, the bicubic reference and `upscale`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from affsr.operators.downsampling import Downsampling

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
