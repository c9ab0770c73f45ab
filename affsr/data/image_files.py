"""Decode one image file and cut it to an HR image: the per-image steps of the "images" data sets.

Why this module exists: the "images" datasets give one HR image per source image (CelebA: crop box → 64×64;
ImageNet: centre crop → 128×128; the embedded LFW faces: 25×25 → centre 24×24), unlike the patch sources
(:mod:`affsr.data.patches`), which cut many patches from a few large images. :func:`decode_image` turns a file's
bytes into pixels; :func:`crop_resize` makes one HR image of it. Which images a data set has, and how they
are split, is :mod:`affsr.data.image_collections` / :mod:`affsr.data.archives` (collections) and :mod:`affsr.data.splits`.

Conventions: a read image is float64 in [0, 1] with shape (H, W) (grey) or (H, W, 3) (RGB); 8-bit pixels
become k/255 exactly, so ``round(255·y)`` gives back the stored bytes. Every user mistake (corrupt file, a
crop box outside the image) raises :class:`affsr.errors.DataError` with a one-line message that names the
file or value and says what to do.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from affsr.errors import DataError

__all__ = ["decode_image", "crop_resize"]

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # Pillow's modes for 16-bit grey PNG / TIFF
# What Pillow raises for bad data: OSError (incl. UnidentifiedImageError, "image file is truncated"),
# SyntaxError / struct.error / EOFError from format parsers, ValueError for bad headers, and
# DecompressionBombError (not an OSError) for absurd sizes.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)


def decode_image(data: bytes, name: str, colour: bool) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, ...) to float64 in [0, 1]: (H, W, 3) if ``colour`` else (H, W).

    Any Pillow mode is converted: to RGB for colour (alpha is dropped, palettes expanded, CMYK converted)
    or to L (ITU-R 601-2 luma) for grey. 16-bit grey (mode I;16 / I) is scaled by 1/65535 instead, because
    Pillow's own conversion to L would clip it at 255. ``img.load()`` forces a full decode so a truncated
    file fails here rather than yielding a half-grey image (``ImageFile.LOAD_TRUNCATED_IMAGES`` is left off).

    Raises DataError naming ``name`` if the data is corrupt, truncated or not an image.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in _SIXTEEN_BIT_MODES:
                grey = np.clip(np.asarray(img, dtype=np.float64), 0.0, 65535.0) / 65535.0
                return np.repeat(grey[:, :, None], 3, axis=2) if colour else grey
            mode = "RGB" if colour else "L"
            pixels = np.asarray(img if img.mode == mode else img.convert(mode), dtype=np.uint8)
    except _DECODE_ERRORS as e:
        raise DataError(f"image {name} is corrupt or truncated ({type(e).__name__}: {e}); delete or replace it") from e
    return pixels.astype(np.float64) / 255.0


def _square_box(height: int, width: int, crop: tuple[int, ...]) -> tuple[int, int, int]:
    """(top, left, size) of the square that ``crop`` describes in a height × width image (see crop_resize)."""
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in crop):
        raise DataError(f"crop {crop!r} must be integers: (), (size,) or (top, left, size)")
    if len(crop) == 0:
        size = min(height, width)
        return (height - size) // 2, (width - size) // 2, size
    if len(crop) == 1:
        size = int(crop[0])
        return (height - size) // 2, (width - size) // 2, size
    if len(crop) == 3:
        top, left, size = (int(v) for v in crop)
        return top, left, size
    raise DataError(f"crop {crop!r} has {len(crop)} numbers; use (), (size,) or (top, left, size)")


def crop_resize(image: np.ndarray, hr_size: int, crop: tuple[int, ...] = ()) -> np.ndarray:
    """Cut a square from ``image`` and resize it to an HR image: uint8 (C, hr_size, hr_size) = round(255·y).

    Args:
        image: float in [0, 1], (H, W) grey (→ C = 1) or (H, W, C) with C ∈ {1, 3}.
        hr_size: output side in pixels.
        crop: ``()`` the largest centred square; ``(size,)`` a centred size × size square; ``(top, left,
            size)`` exactly that box (rows top … top+size-1, columns left … left+size-1). A centred square
            with an odd margin leaves the extra row/column at the bottom/right.

    The square is quantised to uint8 first and resized only if size ≠ hr_size. For an integer downscale
    factor f, each output pixel is ``rint`` of the mean of its f × f block: area averaging, what srez did
    for CelebA, with no mixing of neighbouring blocks. It is computed in numpy rather than with Pillow's
    ``Image.Resampling.BOX``, which gives the same box weights but rounds to uint8 after each of its two
    separable passes, biasing 2× reductions upward by ≈ 0.5 grey level on average. Any other size ratio uses
    Pillow's antialiased ``Image.Resampling.BICUBIC`` on the uint8 L / RGB image (Pillow widens the kernel
    by the scale factor when shrinking; ``reducing_gap=None`` keeps that exact instead of a faster two-step
    approximation). Upscaling (size < hr_size) also uses BICUBIC, although the result is not truly HR.

    Raises DataError if the box does not fit the image or the image is not a float image in [0, 1].
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (1, 3):
        pass
    elif a.ndim == 2:
        a = a[:, :, None]
    else:
        raise DataError(f"image has shape {a.shape}; expected (H, W) or (H, W, C) with C = 1 or 3")
    if not isinstance(hr_size, (int, np.integer)) or hr_size <= 0:
        raise DataError(f"hr_size={hr_size!r} must be a positive integer")
    height, width = a.shape[:2]
    top, left, size = _square_box(height, width, tuple(crop))
    if size <= 0 or top < 0 or left < 0 or top + size > height or left + size > width:
        raise DataError(
            f"crop {tuple(crop)} (top={top}, left={left}, size={size}) does not fit an image of {height}×{width} "
            f"pixels (rows×columns); choose a box inside the image"
        )
    square = a[top : top + size, left : left + size].astype(np.float64)
    if not np.all(np.isfinite(square)) or square.min() < 0.0 or square.max() > 1.0:
        raise DataError("image has values outside [0, 1] (or NaN); scale it to [0, 1] before cropping")
    u8 = np.clip(np.rint(square * 255.0), 0, 255).astype(np.uint8)
    if size > hr_size and size % hr_size == 0:
        f = size // hr_size
        means = u8.reshape(hr_size, f, hr_size, f, -1).mean(axis=(1, 3))
        u8 = np.clip(np.rint(means), 0, 255).astype(np.uint8)
    elif size != hr_size:
        pil = Image.fromarray(u8[:, :, 0] if u8.shape[2] == 1 else np.ascontiguousarray(u8))
        pil = pil.resize((hr_size, hr_size), Image.Resampling.BICUBIC, reducing_gap=None)
        u8 = np.asarray(pil, dtype=np.uint8).reshape(hr_size, hr_size, -1)
    return np.ascontiguousarray(u8.transpose(2, 0, 1))
