"""An HR image that is never whole in memory: v = f + Aᵀz, read and downsampled a band of rows at a time.

Why: `affsr upscale` writes photos of 16–256 Mpx. The projected output is ŷ = clamp(f + Aᵀz), where f is
the network's blended raw output (kept on disk by :mod:`affsr.upscaling.disk`) and z is LR-grid state
(z = u + λ: u = (A Aᵀ)⁺(x − A f) from the affine projection, λ the dual of the box projection). Every HR
quantity the solvers need is a local function of f and z: HR rows of v need the LR rows of z within the
adjoint's stencil, and an LR row of A g(v) needs the HR rows within the kernel. So they are computed a
band of rows at a time, and peak memory follows the band, not the image.

``f`` is anything with ``shape`` (C, H, W), ``rows(index)`` → (C, len(index), W) float64 tensor for an
int array of HR row indices (already taken modulo H) and ``channel(c)`` → the same for channel c alone: :class:`InMemory` wraps a tensor, and
:class:`affsr.upscaling.disk.DiskImage` reads a file. The circular boundary is local in this sense; the
reflect boundary is handled whole (one band: the image), in memory.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Protocol

import numpy as np
import torch
from torch import Tensor

from affsr.operators.downsampling import Downsampling
from affsr.operators.polyphase import Polyphase, fast_operator

__all__ = ["HRRows", "InMemory", "margins", "v_rows", "a_rows", "lr_errors", "bands", "BAND_ROWS"]

#: LR rows per band of a sweep: 64 LR rows of a 4096-wide ×4 output are 256 HR rows, 8 MB per channel.
BAND_ROWS = 64


class HRRows(Protocol):
    """An HR image (C, H, W) read by rows (module docstring)."""

    shape: tuple[int, int, int]

    def rows(self, index: np.ndarray) -> Tensor: ...

    def channel(self, c: int) -> "HRRows": ...


class InMemory:
    """A (C, H, W) tensor as :class:`HRRows` (tests, the reflect boundary, small images)."""

    def __init__(self, image: Tensor):
        self.image = image.detach().double()
        self.shape = tuple(self.image.shape)

    def rows(self, index: np.ndarray) -> Tensor:
        return self.image[:, torch.as_tensor(index, dtype=torch.long)]

    def channel(self, c: int) -> "InMemory":
        return InMemory(self.image[c:c + 1])


def margins(op: Downsampling | Polyphase, axis: int) -> tuple[int, int]:
    """LR rows (before, after) a row of A needs around it so that its kernel reads only rows of the band."""
    s, k, o = op.scale, op.kernel_shape[axis], op.origin[axis]
    return math.ceil(o / s), max(0, math.ceil((k - o - s) / s))


def bands(h: int, rows: int | None = None) -> Iterator[tuple[int, int]]:
    """(first, end) LR rows of consecutive bands covering [0, h), :data:`BAND_ROWS` each by default."""
    rows = rows or BAND_ROWS
    for first in range(0, h, rows):
        yield first, min(h, first + rows)


def _adjoint_rows(op: Polyphase, z: Tensor, lr_rows: np.ndarray) -> Tensor:
    """(Aᵀ z) on the HR rows of the LR rows ``lr_rows`` (consecutive modulo h), all columns: z's rows within
    the stencil's reach are gathered around them, so the band's own circular wrap falls outside the crop."""
    h = z.shape[-2]
    _, _, top, bottom = op.pad
    index = np.concatenate([lr_rows[0] - np.arange(top, 0, -1), lr_rows, lr_rows[-1] + 1 + np.arange(bottom)]) % h
    band = op.adjoint(z[:, torch.as_tensor(index, dtype=torch.long)][None])[0]
    s = op.scale
    return band[:, s * top:s * (top + len(lr_rows))]


def v_rows(op, f: HRRows, z: Tensor | None, lr_rows: np.ndarray) -> Tensor:
    """v = f + Aᵀz (z: (C, h, w) or None for v = f) on the HR rows of ``lr_rows`` (consecutive modulo h):
    (C, s·len, W) float64. The reflect boundary computes Aᵀz whole (its borders are not local)."""
    s, h = op.scale, f.shape[1] // op.scale
    lr_rows = np.asarray(lr_rows) % h
    hr = (lr_rows[:, None] * s + np.arange(s)).ravel()
    v = f.rows(hr).clone()
    if z is not None:
        fast = fast_operator(op)
        if isinstance(fast, Polyphase):
            v += _adjoint_rows(fast, z.double(), lr_rows)
        else:
            v += op.adjoint(z.double()[None])[0][:, torch.as_tensor(hr, dtype=torch.long)]
    return v


def a_rows(op, f: HRRows, z: Tensor | None, first: int, end: int,
           transform: Callable[[Tensor], Tensor] = lambda v: v) -> Tensor:
    """A transform(v) on LR rows [first, end): (C, end − first, w), v = f + Aᵀz read with the kernel's margins."""
    h = f.shape[1] // op.scale
    fast = fast_operator(op)
    if not isinstance(fast, Polyphase):  # reflect: the whole image, once per call
        whole = transform(v_rows(op, f, z, np.arange(h)))
        return op(whole[None])[0][:, first:end]
    before, after = margins(op, 0)
    lr_rows = np.arange(first - before, end + after)
    band = transform(v_rows(op, f, z, lr_rows))
    return fast(band[None])[0][:, before:before + end - first]


def lr_errors(op, f: HRRows, z: Tensor | None, x: Tensor,
              transform: Callable[[Tensor], Tensor] = lambda v: v, rows: int | None = None) -> Tensor:
    """A transform(f + Aᵀz) − x for every LR row: (C, h, w), a band at a time."""
    h = x.shape[-2]
    if not isinstance(fast_operator(op), Polyphase):
        return a_rows(op, f, z, 0, h, transform) - x
    return torch.cat([a_rows(op, f, z, first, end, transform) - x[:, first:end] for first, end in bands(h, rows)], dim=1)
