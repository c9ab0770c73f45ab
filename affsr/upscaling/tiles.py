"""The model over a whole image: overlapping LR tiles through the generator, blended, then one affine
projection for the whole image; and A applied to a user's HR image.

Why tiles and one global projection: a large image does not fit through the generator at once, and a
projected model applied tile by tile would be consistent per tile (with A wrapping around each tile's
borders), not for the whole image. So the *raw* generator output f(x) is computed on overlapping LR
tiles, blended with linear ramps across the overlaps, and the affine projection
ŷ = A⁺x + (I − A⁺A) f(x) is applied once to the whole image (A circular on the whole image, as in
training). Then A ŷ = x up to float round-off for any tiling. The projection's A⁺ works on the LR grid
(an FFT of h × w), so only Aᵀ and A touch the HR image.

Images here are (C, H, W) float arrays in [0, 1], converted to the channels the checkpoint was trained on
(colour → grey: ITU-R 601 luma; grey → colour: the grey copied to R, G, B).
"""

from __future__ import annotations

import numpy as np
import torch

from affsr.errors import DataError
from affsr.nets.sr_model import SRModel
from affsr.operators.downsampling import Downsampling
from affsr.operators.polyphase import fast_operator

__all__ = ["to_channels", "upscale", "affine_projection", "upscale_alpha", "downsample", "apply_a"]

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


@torch.no_grad()
def upscale(model: SRModel, lr: np.ndarray, tile: int = 64, overlap: int = 8,
            device: torch.device | str = "cpu", op: Downsampling | None = None,
            affine: bool | None = None) -> np.ndarray:
    """ŷ for one LR image (C, h, w) float in [0, 1] → (C, s·h, s·w) float64.

    ``tile``/``overlap``: LR pixels per tile side and shared between neighbouring tiles. ``op``: the A the
    LR image was made with, if not the model's (an image from another tool: pick its operator; same scale
    as the model's). ``affine``: project the blended raw output onto A ŷ = x (default: for the models
    trained with the projection, as in training; soft and unconstrained models give their raw output).
    """
    if tile <= 0 or not 0 <= overlap < tile:
        raise DataError(f"tile={tile}, overlap={overlap}: need tile > 0 and 0 ≤ overlap < tile")
    op = op or model.op
    if int(op.scale) != int(model.op.scale):
        raise DataError(f"the operator's scale {op.scale} is not the model's {model.op.scale}")
    s = int(op.scale)
    channels, h, w = lr.shape
    x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None].to(device)
    raw = np.zeros((channels, s * h, s * w))
    weight = np.zeros((s * h, s * w))
    for top in _starts(h, tile, overlap):
        for left in _starts(w, tile, overlap):
            th, tw = min(tile, h), min(tile, w)
            f = model.generator(x[:, :, top:top + th, left:left + tw]).double().cpu().numpy()[0]
            ov_h = min(s * overlap, s * th // 2) if th < h else 0
            ov_w = min(s * overlap, s * tw // 2) if tw < w else 0
            ramp = np.outer(_ramp(s * th, ov_h), _ramp(s * tw, ov_w))
            raw[:, s * top:s * (top + th), s * left:s * (left + tw)] += f * ramp
            weight[s * top:s * (top + th), s * left:s * (left + tw)] += ramp
    raw /= weight
    if affine is None:
        affine = model.constraint in ("projected", "projected_box")
    return affine_projection(op, raw, lr) if affine else raw


def affine_projection(op: Downsampling, f: np.ndarray, lr: np.ndarray) -> np.ndarray:
    """A⁺x + (I − A⁺A) f = f + A⁺(x − A f) for f (C, H, W) and x (C, h, w), in float64, in place of f
    and one channel at a time (the HR image is the large one: each channel's temporaries are 1/C of it)."""
    fast = fast_operator(op)
    for c in range(f.shape[0]):
        plane = torch.from_numpy(f[c:c + 1])[None]
        residual = torch.from_numpy(np.ascontiguousarray(lr[c:c + 1], dtype=np.float64))[None] - fast(plane)
        if op.boundary == "circular":  # A⁺ = Aᵀ (A Aᵀ)⁺, with the faster Aᵀ
            correction = fast.adjoint(op.gram_inverse(residual))
        else:
            correction = op.pinv(residual)
        plane += correction  # writes through to f
    return f


def upscale_alpha(op: Downsampling, alpha: np.ndarray) -> np.ndarray:
    """An (h, w) alpha plane → (s·h, s·w) by plain cubic interpolation on A's grid (edges repeated,
    clipped to [0, 1]); alpha is not part of what the model or A see."""
    from affsr.operators.interpolation import cubic_upsample, grid_offset

    a = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float64))[None, None]
    return cubic_upsample(a, op.scale, grid_offset(op), boundary="replicate")[0, 0].clamp(0, 1).numpy()


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
