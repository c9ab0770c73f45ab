"""Checks shared by the tests of affsr.report.plots: a figure file is a real PNG and no temp file is left."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def read_png(path: Path) -> np.ndarray:
    """The image at ``path``, after checking that it is a PNG of more than 100 × 100 pixels."""
    assert path.exists(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIG, "not a PNG file"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, img.shape
    return img


def no_temp_files(folder: Path) -> None:
    """No hidden or temp file of an atomic write is left in ``folder``."""
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    assert leftovers == [], leftovers
