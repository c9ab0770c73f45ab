"""Cut random HR patches from a few large images (the "patches" layout: grass, textures, photographs).

Why this module exists: the paper's grass data are "random patches extracted from high-resolution images of
grass texture". Each image is split into horizontal bands (:func:`affsr.data.splits.band_ranges`: train the top
75 % of its rows, val the next 12.5 %, test the last 12.5 %), and each split's patches lie wholly inside its
band, so no source pixel appears in two splits. :func:`patch_splits` gives the HR patches of all three
splits as uint8 (N, C, H, W) = round(255·y) with their positions; :func:`affsr.data.prepare` makes the LR
images and writes the data set.
"""

from __future__ import annotations

import numpy as np

from affsr.config.data import SPLITS
from affsr.data import sources
from affsr.data.sources import SourceSpec
from affsr.data.splits import BAND_FRACTIONS, band_ranges
from affsr.errors import DataError

__all__ = ["load_source", "patch_splits"]


def load_source(source: str, spec: SourceSpec | None = None, seed: int = 0) -> list[np.ndarray]:
    """Load a patches-layout source's images as float64 arrays (C, H, W) in [0, 1], C ∈ {1, 3}.

    ``spec`` says what an external source reads (default: nothing, for the embedded sources). Raises
    DataError for an unknown name, a malformed image or mixed channel counts.
    """
    src = sources.source(source)
    if src.layout != "patches":
        raise DataError(f"data source {source!r} is a collection of whole images, not patch images")
    images = src.load(spec or SourceSpec(), seed)
    if not images:
        raise DataError(f"data source {source!r} returned no images")
    out: list[np.ndarray] = []
    for i, img in enumerate(images):
        a = np.asarray(img, dtype=np.float64)
        if a.ndim == 2:
            a = a[None]
        elif a.ndim == 3 and a.shape[2] == 3:
            a = np.ascontiguousarray(a.transpose(2, 0, 1))
        else:
            raise DataError(
                f"data source {source!r} image {i} has shape {np.shape(img)}; expected (H, W) or (H, W, 3)"
            )
        if not np.all(np.isfinite(a)) or a.min() < 0.0 or a.max() > 1.0:
            raise DataError(f"data source {source!r} image {i} has values outside [0, 1]; scale it to [0, 1]")
        out.append(a)
    channels = {a.shape[0] for a in out}
    if len(channels) != 1:
        raise DataError(f"data source {source!r} mixes grey and colour images (channels {sorted(channels)})")
    return out


def _check_sizes(source: str, images: list[np.ndarray], hr_size: int, scale: int) -> None:
    """Fail early, naming hr_size and scale, if patches cannot be cut or downsampled exactly."""
    if not isinstance(hr_size, (int, np.integer)) or hr_size <= 0:
        raise DataError(f"hr_size={hr_size!r} must be a positive integer")
    for i, img in enumerate(images):
        height, width = img.shape[1:]
        if hr_size > width:
            raise DataError(f"hr_size={hr_size} exceeds the width {width} of image {i} of source {source!r}")
        for split, (r0, r1) in band_ranges(height).items():
            if hr_size > r1 - r0:
                raise DataError(
                    f"hr_size={hr_size} exceeds the {split} band height {r1 - r0} (rows {r0}–{r1}) of image {i} "
                    f"of source {source!r}; bands are 75/12.5/12.5 % of {height} rows, choose hr_size ≤ "
                    f"{_largest_fitting(images, scale)} (a multiple of scale={scale})"
                )


def _largest_fitting(images: list[np.ndarray], scale: int) -> int:
    """Largest multiple of ``scale`` that fits every band of every image (for error messages)."""
    limit = min(
        min(min(r1 - r0 for r0, r1 in band_ranges(img.shape[1]).values()), img.shape[2]) for img in images
    )
    return (limit // scale) * scale


def _sample_positions(
    rng: np.random.Generator, images: list[np.ndarray], split: str, hr_size: int, n: int
) -> np.ndarray:
    """(n, 3) int64 rows (image index, top row, left col) of patches lying wholly inside ``split``'s band.

    Every valid top-left position over all images is equally likely (images are picked with probability
    proportional to their number of valid positions, then the position uniformly within the band).
    """
    if n < 0:
        raise DataError(f"number of {split} patches must be ≥ 0, got {n}")
    counts = []
    row_lo, row_hi, col_hi = [], [], []
    for img in images:
        height, width = img.shape[1:]
        r0, r1 = band_ranges(height)[split]
        n_rows, n_cols = r1 - r0 - hr_size + 1, width - hr_size + 1
        counts.append(n_rows * n_cols)
        row_lo.append(r0)
        row_hi.append(n_rows)
        col_hi.append(n_cols)
    p = np.asarray(counts, dtype=np.float64) / float(sum(counts))
    idx = rng.choice(len(images), size=n, p=p)
    rows = np.asarray(row_lo)[idx] + rng.integers(0, np.asarray(row_hi)[idx])
    cols = rng.integers(0, np.asarray(col_hi)[idx])
    return np.stack([idx, rows, cols], axis=1).astype(np.int64).reshape(n, 3)


def _cut(images: list[np.ndarray], positions: np.ndarray, hr_size: int) -> np.ndarray:
    """HR patches as uint8 (N, C, hr_size, hr_size): round(255·y) of each patch at ``positions``."""
    channels = images[0].shape[0]
    out = np.empty((len(positions), channels, hr_size, hr_size), dtype=np.uint8)
    for k, (i, r, c) in enumerate(positions):
        patch = images[i][:, r : r + hr_size, c : c + hr_size]
        out[k] = np.clip(np.rint(patch * 255.0), 0, 255).astype(np.uint8)
    return out


def patch_splits(
    source: str, spec: SourceSpec, hr_size: int, scale: int, counts: dict[str, int], seed: int
) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Random HR patches of every split, from disjoint row bands of every image of ``source``.

    Returns (arrays, details): ``arrays[split]`` holds ``hr`` uint8 (N, C, hr_size, hr_size) = round(255·y)
    and ``positions`` int64 (N, 3) = (image index, top row, left col), N = counts[split]; ``details`` is
    the manifest's record of the layout and bands. Each split draws from its own child stream of
    ``numpy.random.default_rng(seed)`` (``Generator.spawn``), so val / test do not change with
    counts["train"]. Raises DataError if hr_size does not fit a band (naming the largest that does).
    """
    images = load_source(source, spec, seed)
    _check_sizes(source, images, hr_size, scale)
    rngs = dict(zip(SPLITS, np.random.default_rng(seed).spawn(len(SPLITS))))
    arrays = {}
    for split in SPLITS:
        positions = _sample_positions(rngs[split], images, split, hr_size, counts[split])
        arrays[split] = {"hr": _cut(images, positions, hr_size), "positions": positions}
    details = {
        "layout": "patches",
        "band_fractions": dict(BAND_FRACTIONS),
        "bands": {s: [list(band_ranges(img.shape[1])[s]) for img in images] for s in SPLITS},
        "bands_note": "per image, half-open row ranges [start, stop); a patch's rows lie inside its band",
        "image_shapes": [list(img.shape) for img in images],
    }
    return arrays, details
