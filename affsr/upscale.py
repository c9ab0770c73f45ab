"""Super-resolve and downsample users' own images with a study's model and operator.

Why tiles and one global projection: a large image does not fit through the generator at once, and a
projected model applied tile by tile would be consistent per tile (with A wrapping around each tile's
borders), not for the whole image. So the *raw* generator output f(x) is computed on overlapping LR
tiles, blended with linear ramps across the overlaps, and the affine projection
ŷ = A⁺x + (I − A⁺A) f(x) is applied once to the whole image (A circular on the whole image, as in
training). Then A ŷ = x up to float round-off for any tiling. Soft and unconstrained models are
stitched the same way without the projection.

Images are float arrays in [0, 1], (H, W) grey or (H, W, 3) colour, converted to the channels the
checkpoint was trained on (colour → grey: ITU-R 601 luma; grey → colour: the grey copied to R, G, B).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from affsr.errors import DataError
from affsr.nets import SRModel
from affsr.operators import Downsampling

__all__ = ["to_channels", "upscale", "downsample", "read_image", "write_image"]

_LUMA = np.array([0.299, 0.587, 0.114])


def read_image(path: Path) -> np.ndarray:
    """An image file as float64 in [0, 1]: (H, W) or (H, W, 3) (alpha dropped). DataError names the file."""
    from affsr.images import decode_image

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image not found")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            colour = img.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "1", "LA")
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: not an image file PIL can read ({err})") from None
    return decode_image(path.read_bytes(), str(path), colour=colour)


def write_image(path: Path, image: np.ndarray) -> None:
    """Write (H, W) or (H, W, 3) values in [0, 1] as an 8-bit PNG (clipped, rounded), atomically."""
    from PIL import Image

    from affsr.files import atomic_write

    pixels = np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
    atomic_write(path, lambda handle: Image.fromarray(pixels).save(handle, format="PNG"))


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
            device: torch.device | str = "cpu") -> np.ndarray:
    """ŷ for one LR image (C, h, w) float in [0, 1] → (C, s·h, s·w) float64, consistent: A ŷ = x.

    ``tile``/``overlap``: LR pixels per tile side and shared between neighbouring tiles.
    """
    if tile <= 0 or not 0 <= overlap < tile:
        raise DataError(f"tile={tile}, overlap={overlap}: need tile > 0 and 0 ≤ overlap < tile")
    op: Downsampling = model.op
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
    f_all = torch.from_numpy(raw / weight)[None]
    if model.constraint != "projected":
        return f_all[0].numpy()
    x64 = x.double().cpu()
    return (f_all + op.pinv(x64 - op(f_all)))[0].numpy()  # A⁺x + (I − A⁺A) f, in float64


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


def lr_consistency(op: Downsampling, sr: np.ndarray, lr: np.ndarray) -> float:
    """mean (Aŷ − x)² of one SR image (C, H, W) and its LR input (C, h, w), in float64."""
    with torch.no_grad():
        return float((op(torch.from_numpy(sr)[None].double()) - torch.from_numpy(lr)[None].double()).square().mean())


def write_planes(path: Path, image: np.ndarray) -> None:
    """:func:`write_image` for a (C, H, W) array (grey C = 1 or RGB C = 3)."""
    write_image(path, image[0] if len(image) == 1 else image.transpose(1, 2, 0))
