"""The model over a whole image: overlapping LR tiles through the generator, blended, then one affine
projection for the whole image; and A applied to a user's HR image.

Why tiles and one global projection: a large image does not fit through the generator at once, and a
projected model applied tile by tile would be consistent per tile (with A wrapping around each tile's
borders), not for the whole image. So the *raw* generator output f(x) is computed on overlapping LR
tiles, blended with linear ramps across the overlaps, and the affine projection
ŷ = A⁺x + (I − A⁺A) f(x) is applied once to the whole image (A circular on the whole image, as in
training). Then A ŷ = x up to float round-off for any tiling. The projection's A⁺ works on the LR grid
(an FFT of h × w), so only Aᵀ and A touch the HR image: ŷ = f + Aᵀu with u = (A Aᵀ)⁺(x − A f) held on
the LR grid (:func:`affine_state`). The blended output is handed on a band of rows at a time
(:func:`raw_bands`), so `affsr upscale` never holds it whole (:mod:`affsr.upscaling.disk`).

Images here are (C, H, W) float arrays in [0, 1], converted to the channels the checkpoint was trained on
(colour → grey: ITU-R 601 luma; grey → colour: the grey copied to R, G, B).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from affsr.errors import DataError
from affsr.nets.sr_model import SRModel
from affsr.operators.downsampling import Downsampling
from affsr.operators.polyphase import fast_operator
from affsr.operators.row_bands import HRRows, bands, lr_errors

__all__ = ["to_channels", "check_tiling", "raw_bands", "upscale", "affine_state", "affine_projection", "alpha_bands", "upscale_alpha",
           "downsample", "apply_a"]

_LUMA = np.array([0.299, 0.587, 0.114])


def to_channels(image: np.ndarray, channels: int) -> tuple[np.ndarray, str]:
    """(C, H, W) float array with ``channels`` channels, and a note of any conversion made."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[..., :3].transpose(2, 0, 1)
    else:
        raise DataError(f"image of shape {np.shape(image)}: expected (H, W) or (H, W, 3)")
    if a.shape[0] == channels:
        return np.ascontiguousarray(a), ""
    if channels == 1:
        return np.tensordot(_LUMA, a, axes=1)[None], "converted colour to grey (ITU-R 601 luma): the model is grey"
    return np.repeat(a, channels, axis=0), f"copied grey into {channels} channels: the model is colour"


def _ramp(n: int, overlap: int) -> np.ndarray:
    """Blending weights along one tile side: linear ramps of ``overlap`` samples at both ends."""
    w = np.ones(n)
    if overlap > 0:
        ramp = (np.arange(overlap) + 1.0) / (overlap + 1.0)
        w[:overlap] = np.minimum(w[:overlap], ramp)
        w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
    return w


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile start offsets covering [0, length) with at least ``overlap`` samples shared between tiles."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step)) + [length - tile]
    return sorted(set(starts))


def check_tiling(model: SRModel, op: Downsampling, tile: int, overlap: int) -> None:
    """DataError unless the tiling is valid and ``op`` has the model's scale."""
    if tile <= 0 or not 0 <= overlap < tile:
        raise DataError(f"tile={tile}, overlap={overlap}: need tile > 0 and 0 ≤ overlap < tile")
    if int(op.scale) != int(model.op.scale):
        raise DataError(f"the operator's scale {op.scale} is not the model's {model.op.scale}")


@torch.no_grad()
def raw_bands(model: SRModel, lr: np.ndarray, tile: int = 64, overlap: int = 8, device: torch.device | str = "cpu",
              scale: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """The blended raw output f(x) of one LR image (C, h, w), top to bottom: (first HR row, rows (C, n, W)
    float64), every HR row once. One row of tiles is in memory at a time: rows are handed on as soon as
    no later tile reaches them."""
    s = int(scale or model.op.scale)
    channels, h, w = lr.shape
    x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None].to(device)
    th, tw = min(tile, h), min(tile, w)
    tops, lefts = _starts(h, tile, overlap), _starts(w, tile, overlap)
    first = 0  # the first HR row not yet handed on; the buffers hold rows [first, first + len)
    raw, weight = np.zeros((channels, 0, s * w)), np.zeros((0, s * w))
    for k, top in enumerate(tops):
        end = s * (top + th)
        grow = end - first - weight.shape[0]
        raw = np.concatenate([raw, np.zeros((channels, grow, s * w))], axis=1)
        weight = np.concatenate([weight, np.zeros((grow, s * w))], axis=0)
        ov_h = min(s * overlap, s * th // 2) if th < h else 0
        for left in lefts:
            f = model.generator(x[:, :, top:top + th, left:left + tw]).double().cpu().numpy()[0]
            ov_w = min(s * overlap, s * tw // 2) if tw < w else 0
            ramp = np.outer(_ramp(s * th, ov_h), _ramp(s * tw, ov_w))
            rows = slice(s * top - first, s * (top + th) - first)
            raw[:, rows, s * left:s * (left + tw)] += f * ramp
            weight[rows, s * left:s * (left + tw)] += ramp
        done = s * tops[k + 1] if k + 1 < len(tops) else end  # rows no later tile reaches
        yield first, raw[:, :done - first] / weight[:done - first]
        raw, weight, first = raw[:, done - first:], weight[done - first:], done


def upscale(model: SRModel, lr: np.ndarray, tile: int = 64, overlap: int = 8,
            device: torch.device | str = "cpu", op: Downsampling | None = None,
            affine: bool | None = None) -> np.ndarray:
    """ŷ for one LR image (C, h, w) float in [0, 1] → (C, s·h, s·w) float64, in memory (`affsr upscale`
    streams the same steps through a file: :mod:`affsr.upscaling.verbs`).

    ``tile``/``overlap``: LR pixels per tile side and shared between neighbouring tiles. ``op``: the A the
    LR image was made with, if not the model's (an image from another tool: pick its operator; same scale
    as the model's). ``affine``: project the blended raw output onto A ŷ = x (default: for the models
    trained with the projection, as in training; soft and unconstrained models give their raw output).
    """
    op = op or model.op
    check_tiling(model, op, tile, overlap)
    raw = np.concatenate([rows for _, rows in raw_bands(model, lr, tile, overlap, device, op.scale)], axis=1)
    if affine is None:
        affine = model.constraint in ("projected", "projected_box")
    return affine_projection(op, raw, lr) if affine else raw


def affine_state(op: Downsampling, f: HRRows, lr: np.ndarray) -> Tensor:
    """u = (A Aᵀ)⁺(x − A f) (C, h, w) for f read by rows (circular A): the affine projection is then
    f + Aᵀu (:func:`affine_projection` in one piece), and only u, LR-sized, is held."""
    x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float64))
    return fast_operator(op).gram_inverse((x - lr_errors(op, f, None, torch.zeros_like(x)))[None])[0]


def affine_projection(op: Downsampling, f: np.ndarray, lr: np.ndarray) -> np.ndarray:
    """A⁺x + (I − A⁺A) f = f + A⁺(x − A f) for f (C, H, W) and x (C, h, w), in float64, in place of f
    and one channel at a time (the HR image is the large one: each channel's temporaries are 1/C of it)."""
    fast = fast_operator(op)
    for c in range(f.shape[0]):
        plane = torch.from_numpy(f[c:c + 1])[None]
        residual = torch.from_numpy(np.ascontiguousarray(lr[c:c + 1], dtype=np.float64))[None] - fast(plane)
        if op.boundary == "circular":  # A⁺ = Aᵀ (A Aᵀ)⁺, with the faster Aᵀ
            correction = fast.adjoint(fast.gram_inverse(residual))
        else:
            correction = op.pinv(residual)
        plane += correction  # writes through to f
    return f


def upscale_alpha(op: Downsampling, alpha: np.ndarray) -> np.ndarray:
    """An (h, w) alpha plane → (s·h, s·w) by plain cubic interpolation on A's grid (edges repeated,
    clipped to [0, 1]); alpha is not part of what the model or A see."""
    return np.concatenate([rows for _, rows in alpha_bands(op, alpha)], axis=0)


#: LR rows read around a band of alpha: the cubic's four taps reach two rows (one more for A's grid offset).
ALPHA_MARGIN = 4


def alpha_bands(op: Downsampling, alpha: np.ndarray, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`upscale_alpha` a band of LR rows at a time: (first HR row, rows (n, W)), top to bottom.
    Each band is interpolated with :data:`ALPHA_MARGIN` LR rows around it (edges repeated, as for the
    whole plane), and the rows the margins could change are cut off."""
    from affsr.operators.interpolation import cubic_upsample, grid_offset

    s, h = op.scale, alpha.shape[0]
    for first, end in bands(h, rows):
        low, high = max(0, first - ALPHA_MARGIN), min(h, end + ALPHA_MARGIN)
        a = torch.from_numpy(np.ascontiguousarray(alpha[low:high], dtype=np.float64))[None, None]
        up = cubic_upsample(a, s, grid_offset(op), boundary="replicate")[0, 0].clamp(0, 1).numpy()
        yield s * first, up[s * (first - low):s * (end - low)]


def downsample(op: Downsampling, hr: np.ndarray) -> tuple[np.ndarray, str]:
    """x = A y for one image (C, H, W); crops H, W down to multiples of the scale first (and says so)."""
    s = int(op.scale)
    channels, height, width = hr.shape
    H, W = height - height % s, width - width % s
    if H == 0 or W == 0:
        raise DataError(f"image {height}×{width} is smaller than the scale {s}")
    note = "" if (H, W) == (height, width) else (
        f"cropped {height}×{width} to {H}×{W} (bottom/right edge) so that the scale {s} divides it")
    with torch.no_grad():
        x = op(torch.from_numpy(np.ascontiguousarray(hr[:, :H, :W]))[None].double())[0].numpy()
    return x, note


def apply_a(op: Downsampling, image: np.ndarray) -> np.ndarray:
    """A y (C, h, w) for y (C, H, W), float64, one channel at a time."""
    fast = fast_operator(op)
    with torch.no_grad():
        return np.stack([fast(torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float64))[None, None])[0, 0].numpy()
                         for plane in image])
