"""Image files made in memory for the tests of affsr.data.image_files, affsr.data.image_collections and affsr.data.archives."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

RNG = np.random.default_rng(0)


def encode(pixels: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    """``pixels`` (H, W) or (H, W, 3) uint8 as the bytes of an image file of format ``fmt`` (Pillow)."""
    img = Image.fromarray(pixels)
    if mode is not None:
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def random_rgb(h: int = 8, w: int = 8) -> np.ndarray:
    """A random (h, w, 3) uint8 image."""
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
