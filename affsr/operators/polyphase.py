"""A and Aᵀ with the circular boundary in polyphase form: the same maps as
:class:`affsr.operators.downsampling.Downsampling`, 5-11× faster on a CPU, for the projection solvers.

Why: the projection solvers of :mod:`affsr.operators.interval_projection` apply A and Aᵀ thousands of
times, and ``conv_transpose2d`` in float64 (Downsampling's Aᵀ) was 60 % of their time. Splitting HR
pixels by their phase (p, q) = (row mod s, column mod s) turns both into one small dense convolution on
the LR grid: HR pixel (s·I + p, s·J + q) receives Σ_{m,n} k[s·m + p + oy, s·n + q + ox] · x[I − m, J − n],
a (M, N) stencil per phase (3 × 3 for the paper's 9 × 9 kernel at ×4). So

    Aᵀ x = pixel_shuffle(conv2d(pad_circular(x), W)),   A y = conv2d(pad_circular(pixel_unshuffle(y)), Wᵀ),

W: (s², 1, M, N), one stencil per phase. Measured (2 threads, float64): Aᵀ on 120 windows of 18² LR
1.8 ms against 9.0 ms, on 3 × 256² LR 7.4 ms against 83 ms. Downsampling keeps its own implementation:
the study's training runs are reproducible bit for bit, and this changes round-off.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from affsr.operators.downsampling import Downsampling
from affsr.operators.linear_solvers import inverse_circulant_spectrum

__all__ = ["Polyphase", "fast_operator", "squares_operator", "BAND_VALUES"]

#: A is applied in bands of LR rows whose unfolded input holds at most this many values (64 MB in float64).
BAND_VALUES = 8 * 2**20


class Polyphase:
    """A (``__call__``) and Aᵀ (``adjoint``) of a circular :class:`Downsampling` on (B, C, H, W) /
    (B, C, h, w) tensors, and ``squares()``: the operator of the squared kernel (A_sq D = diag(A D Aᵀ))."""

    def __init__(self, op: Downsampling):
        if op.boundary != "circular":
            raise ValueError(f"the polyphase form needs the circular boundary, not {op.boundary!r}")
        self.op, self.scale, self.origin, self.kernel_shape, self.boundary = (op, op.scale, op.origin,
                                                                             op.kernel_shape, "circular")
        s, kernel, (oy, ox) = op.scale, op.kernel, op.origin
        (kh, kw) = kernel.shape
        # stencil offsets m with some phase p reading a tap: 0 ≤ s·m + p + o < k (m = 0 always is one)
        rows = range(-((s - 1 + oy) // s), (kh - 1 - oy) // s + 1)
        cols = range(-((s - 1 + ox) // s), (kw - 1 - ox) // s + 1)
        weight = torch.zeros(s * s, 1, len(rows), len(cols), dtype=torch.float64)
        for p in range(s):
            for q in range(s):
                for u, m in enumerate(rows):
                    for t, n in enumerate(cols):
                        a, b = s * m + p + oy, s * n + q + ox
                        if 0 <= a < kh and 0 <= b < kw:
                            # conv2d correlates: position u of the stencil reads x[I − m], so m runs backwards
                            weight[p * s + q, 0, len(rows) - 1 - u, len(cols) - 1 - t] = kernel[a, b]
        self.weight = weight
        # circular padding (left, right, top, bottom) so that stencil position u reads x[I + u − top]
        self.pad = (max(cols), -min(cols), max(rows), -min(rows))
        self._cache: dict[tuple, tuple[Tensor, Tensor] | Tensor] = {}

    def _weights(self, like: Tensor) -> tuple[Tensor, Tensor]:
        key = (like.dtype, like.device)
        if key not in self._cache:
            w = self.weight.to(dtype=like.dtype, device=like.device)
            self._cache[key] = (w, w.transpose(0, 1).flip(-2, -1).contiguous())
        return self._cache[key]

    def adjoint(self, x: Tensor) -> Tensor:
        """Aᵀ x: (B, C, h, w) → (B, C, s·h, s·w)."""
        b, c, h, w = x.shape
        weight, _ = self._weights(x)
        z = F.pad(x.reshape(b * c, 1, h, w), self.pad, mode="circular")
        return F.pixel_shuffle(F.conv2d(z, weight), self.scale).reshape(b, c, h * self.scale, w * self.scale)

    def __call__(self, y: Tensor) -> Tensor:
        """A y: (B, C, H, W) → (B, C, H/s, W/s)."""
        b, c, height, width = y.shape
        _, weight = self._weights(y)
        left, right, top, bottom = self.pad
        z = F.pixel_unshuffle(y.reshape(b * c, 1, height, width), self.scale)
        z = F.pad(z, (right, left, bottom, top), mode="circular")
        h = height // self.scale
        # conv2d unfolds its input (s² · M · N values per output: 1.2 GB for one 4096² channel in float64),
        # so a large image goes through in bands of LR rows that bound that buffer
        band = max(1, BAND_VALUES // (z.shape[0] * z.shape[1] * z.shape[-1] * weight.shape[-2] * weight.shape[-1]))
        if band >= h:
            return F.conv2d(z, weight).reshape(b, c, h, width // self.scale)
        reach = weight.shape[-2] - 1
        out = [F.conv2d(z[:, :, r:min(r + band, h) + reach], weight) for r in range(0, h, band)]
        return torch.cat(out, dim=2).reshape(b, c, h, width // self.scale)

    def gram_inverse(self, x: Tensor) -> Tensor:
        """(A Aᵀ)⁺ x on the LR grid, (B, C, h, w) → (B, C, h, w), by FFT: the same map as
        :meth:`Downsampling.gram_inverse` (to round-off), without its HR-sized temporaries (64 MB per 2048²
        of output), for images of any size. A Aᵀ is a circulant whose first column has a few nonzero lags
        (|lag| < kernel size / s), so the column is found on a small grid that holds every lag once and
        placed on the (h, w) grid; the spectrum is cached per (h, w)."""
        h, w = x.shape[-2:]
        key = ("gram", h, w, x.device)
        if key not in self._cache:
            reach = [-(-k // self.scale) + 1 for k in self.kernel_shape]  # beyond every nonzero lag
            small = [min(n, 2 * r + 1) for n, r in zip((h, w), reach)]
            impulse = torch.zeros(1, 1, *small, dtype=torch.float64, device=x.device)
            impulse[..., 0, 0] = 1.0
            column = self(self.adjoint(impulse))[0, 0]
            lags = [torch.arange(n) if n == m else torch.arange(-r, r + 1) for n, m, r in zip((h, w), small, reach)]
            first = torch.zeros(h, w, dtype=torch.float64, device=x.device)
            first[(lags[0] % h)[:, None], (lags[1] % w)[None, :]] = column[(lags[0] % small[0])[:, None],
                                                                           (lags[1] % small[1])[None, :]]
            self._cache[key] = inverse_circulant_spectrum(first)[:, : w // 2 + 1]
        return torch.fft.irfft2(torch.fft.rfft2(x) * self._cache[key].to(x.dtype), s=(h, w))

    def squares(self) -> "Polyphase":
        """The polyphase operator of the squared kernel: applied to D (B, C, H, W) it gives diag(A D Aᵀ)."""
        return Polyphase(Downsampling(self.op.kernel.square(), self.scale, self.op.origin))


def fast_operator(op):
    """A and Aᵀ as the solvers apply them: the polyphase form for a circular :class:`Downsampling` (same
    maps, several times faster), anything else (a Polyphase already, the reflect boundary) as it is."""
    if isinstance(op, Downsampling) and op.boundary == "circular":
        return Polyphase(op)
    return op


def squares_operator(op) -> Polyphase:
    """The operator that maps D (B, C, H, W) to diag(A D Aᵀ): the squared kernel's, circular (for the
    reflect boundary, whose border rows differ, it only preconditions)."""
    if isinstance(op, Polyphase):
        return op.squares()
    return Polyphase(Downsampling(op.kernel.square(), op.scale, op.origin))
