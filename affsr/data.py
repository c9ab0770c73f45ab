"""Prepare and load (LR, HR) datasets.

Why this module exists: the paper's observation model is noise-free, ``x = A y`` (Eq. 5), and *all* LR data
are made with the same operator ``A`` that the model's affine projection uses. So a dataset here is a set of
HR patches ``y`` plus their LR images ``x = A y`` computed with the very operator object passed in.

Layout on disk (written by :func:`prepare`, read by :func:`load_split` / :func:`load_manifest`)::

    out_dir/train.npz   hr uint8 (N, C, H, W)   round(255·y)
    out_dir/val.npz     lr float32 (N, C, h, w) A(hr/255), computed in float64, h = H / scale
    out_dir/test.npz    positions int64 (N, 3)  patches: (image index, top row, left col) of each HR patch
                        names str (N,)          images: the source file of each HR image
    out_dir/manifest.json   what was made and how (written last: its presence marks a complete dataset)

Where the images come from is :mod:`affsr.sources`. Patch sources are split by disjoint regions of each
image (horizontal bands, see :func:`band_ranges`), image collections by image, so no source pixel
appears in two splits. Nothing in this module touches the network.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from affsr import sources
from affsr.errors import DataError
from affsr.files import write_json, write_npz
from affsr.sources import SourceSpec

__all__ = [
    "DataError",
    "SPLITS",
    "BAND_FRACTIONS",
    "band_ranges",
    "load_source",
    "prepare",
    "load_split",
    "hr_to_float",
    "load_positions",
    "load_manifest",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Fraction of each image's rows given to each split, top to bottom: train gets the top 75 %, val the next
#: 12.5 %, test the last 12.5 %. Bands (not random pixels or random patches) keep the splits spatially
#: disjoint, so overlapping random patches cannot leak texture from train into test.
BAND_FRACTIONS: dict[str, float] = {"train": 0.75, "val": 0.125, "test": 0.125}

MANIFEST_NAME = "manifest.json"
_OP_CHUNK = 256  # patches per operator call when making LR images (bounds float64 memory)


def load_source(source: str, spec: SourceSpec | None = None, seed: int = 0) -> list[np.ndarray]:
    """Load a patches-layout source's images as float64 arrays (C, H, W) in [0, 1], C ∈ {1, 3}.

    Raises DataError for an unknown name, a malformed image or mixed channel counts.
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


# --------------------------------------------------------------------------------------------------------
# Splits and patch positions
# --------------------------------------------------------------------------------------------------------


def band_ranges(height: int) -> dict[str, tuple[int, int]]:
    """Half-open row ranges [start, stop) of the train / val / test bands of an image with ``height`` rows.

    train = [0, ⌊3H/4⌋), val = [⌊3H/4⌋, ⌊7H/8⌋), test = [⌊7H/8⌋, H); e.g. H = 512 → 0–384, 384–448, 448–512.
    The bands tile the image without overlap.
    """
    b1 = (3 * height) // 4
    b2 = (7 * height) // 8
    return {"train": (0, b1), "val": (b1, b2), "test": (b2, height)}


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


def _downsample(op: Any, hr_u8: np.ndarray) -> np.ndarray:
    """LR = A(hr/255) computed in float64, returned as float32 (N, C, h, w).

    LR is decoded from the *stored* uint8 HR, so the pair on disk satisfies x = A y up to float32 round-off.
    It is kept as float32 rather than uint8 because quantising x would break the noise-free model x = A y
    that the affine projection (and the consistency metric) rely on.
    """
    n, channels, size, _ = hr_u8.shape
    lr_size = size // int(op.scale)
    out = np.empty((n, channels, lr_size, lr_size), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, n, _OP_CHUNK):
            y = torch.from_numpy(hr_u8[s : s + _OP_CHUNK].astype(np.float64) / 255.0)
            x = op(y)
            if tuple(x.shape) != (len(y), channels, lr_size, lr_size):
                raise ValueError(
                    f"operator returned shape {tuple(x.shape)} for input {tuple(y.shape)}; "
                    f"expected {(len(y), channels, lr_size, lr_size)}"
                )
            out[s : s + _OP_CHUNK] = x.detach().cpu().to(torch.float64).numpy().astype(np.float32)
    return out


# --------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------


def _patch_splits(
    source: str, spec: SourceSpec, hr_size: int, scale: int, counts: dict[str, int], seed: int
) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Random HR patches from disjoint row bands of every image (patches layout)."""
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


def _image_splits(
    source: str, spec: SourceSpec, hr_size: int, crop: tuple[int, ...], seed: int, progress: bool
) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """One HR image per source image, cropped and resized (images layout); the split is the source's."""
    from affsr.images import crop_resize

    arrays = {}
    with sources.source(source).load(spec, seed) as collection:
        for split in SPLITS:
            names = list(collection.splits.get(split, []))[: (spec.counts or {}).get(split)]
            if not names:
                raise DataError(f"data source {source!r} has no {split} images")
            hr = None
            for i, name in enumerate(tqdm(names, desc=f"{source} {split}", unit="img", disable=not progress,
                                          file=sys.stderr)):
                patch = crop_resize(collection.read(name), hr_size, tuple(crop))
                if hr is None:  # allocate once the channel count is known
                    hr = np.empty((len(names), *patch.shape), dtype=np.uint8)
                elif patch.shape != hr.shape[1:]:
                    raise DataError(f"data source {source!r}: image {name} gives {patch.shape}, the first "
                                    f"gave {hr.shape[1:]}; mixed grey and colour images")
                hr[i] = patch
            arrays[split] = {"hr": hr, "names": np.asarray(names, dtype=str)}
    details = {"layout": "images", "crop": list(crop),
               "crop_note": "() = largest centred square, (size,) = centred square, (top, left, size) = box; "
                            "then resized to hr_size (affsr.images.crop_resize)"}
    return arrays, details


def mirrored(split: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One split's arrays with the left-right mirror of every HR image appended (N → 2N; image N + i is
    image i mirrored). ``names`` get " (mirrored)"; ``positions`` repeat (the same source pixels). The LR
    images are made afterwards from all HR images by A: A's sampling grid (LR pixel i at HR s·i) is not
    symmetric under a mirror, so mirroring the LR images instead would break x = A y."""
    out = dict(split)
    out["hr"] = np.concatenate([split["hr"], split["hr"][..., ::-1]])
    if "names" in split:
        out["names"] = np.concatenate([split["names"], np.char.add(split["names"].astype(str), " (mirrored)")])
    if "positions" in split:
        out["positions"] = np.concatenate([split["positions"], split["positions"]])
    return out


def prepare(
    source: str,
    out_dir: Path,
    hr_size: int,
    op: Any,
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int,
    *,
    crop: tuple[int, ...] = (),
    spec: SourceSpec | None = None,
    progress: bool = False,
    mirror_train: bool = False,
) -> dict:
    """Make a data set from ``source``: HR images, their LR images made with ``op``, and a manifest.

    Args:
        source: a key of :data:`affsr.sources.SOURCES`.
        out_dir: folder to write ``{train,val,test}.npz`` and ``manifest.json`` into (created if missing;
            existing files there are replaced).
        hr_size: HR side in pixels; must be divisible by ``op.scale`` (and, for patch sources, fit in
            every band).
        op: downsampling operator: ``op(y)`` maps torch (B, C, H, W) → (B, C, H/s, W/s); ``op.scale``;
            ``op.describe()`` → JSON-able dict (recorded in the manifest).
        n_train, n_val, n_test: patch counts per split (patches layout), or the most images per split
            (images layout; ImageNet's random re-split makes val and test exactly this size).
        seed: the data are a deterministic function of (source, sizes, counts, seed). Patch splits draw
            from their own child streams of ``numpy.random.default_rng(seed)`` (``Generator.spawn``), so
            val/test patches do not change when n_train changes.
        crop: images layout only: the crop box before resizing (see :func:`affsr.images.crop_resize`).
        spec: what an external source reads (downloaded archive, local folder, filters).
        progress: show a progress bar while decoding image collections.
        mirror_train: append the left-right mirror of every training HR image (:func:`mirrored`); val and
            test stay as they are.

    Splits never share source pixels: patch sources cut train from the top 75 % of each image's rows,
    val from the next 12.5 %, test from the last 12.5 % (:func:`band_ranges`); image collections are split
    by image.

    Returns the manifest dict (also written to ``out_dir/manifest.json``).
    """
    out_dir = Path(out_dir)
    scale = int(op.scale)
    src = sources.source(source)
    if hr_size % scale:  # checked before any image is read, for both layouts
        raise DataError(f"hr_size={hr_size} is not divisible by the operator scale={scale}; "
                        f"choose a multiple of {scale} (e.g. {max(scale, hr_size - hr_size % scale)})")
    counts = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
    spec = dataclasses.replace(spec or SourceSpec(), counts=counts)
    if src.layout == "patches":
        arrays, details = _patch_splits(source, spec, hr_size, scale, counts, seed)
    else:
        arrays, details = _image_splits(source, spec, hr_size, crop, seed, progress)
    if mirror_train:
        arrays["train"] = mirrored(arrays["train"])
    for split in SPLITS:
        arrays[split]["lr"] = _downsample(op, arrays[split]["hr"])

    manifest = {
        "source": source,
        "description": src.description,
        "hr_size": int(hr_size),
        "lr_size": int(hr_size) // scale,
        "scale": scale,
        "channels": int(arrays["train"]["hr"].shape[1]),
        "counts": {split: int(len(arrays[split]["hr"])) for split in SPLITS},
        "seed": int(seed),
        "mirror_train": bool(mirror_train),
        **details,
        "operator": op.describe(),
        "files": {s: f"{s}.npz" for s in SPLITS},
        "formats": {
            "hr": "uint8 (N, C, H, W) = round(255*y)",
            "lr": "float32 (N, C, h, w) = A(hr/255) computed in float64",
            "positions": "patches layout: int64 (N, 3) = (image index, top row, left col) of each HR patch",
            "names": "images layout: str (N,) = source file of each HR image",
        },
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    # Drop any old manifest first and write the new one last: a manifest then always describes a complete set.
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for split in SPLITS:
        write_npz(out_dir / f"{split}.npz", **arrays[split])
    write_json(out_dir / MANIFEST_NAME, manifest)
    return manifest


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a dataset npz, with DataErrors naming the file for missing / corrupt / incomplete data."""
    if not path.is_file():
        raise DataError(f"dataset file {path} not found; run `affsr prepare` to create it")
    required = ("hr", "lr")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in required if k not in z.files]
            if missing:
                raise DataError(
                    f"dataset file {path} lacks key(s) {', '.join(missing)}; re-run `affsr prepare` to rebuild it"
                )
            return {k: z[k] for k in z.files}
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, KeyError) as e:
        raise DataError(
            f"dataset file {path} is corrupt or unreadable ({type(e).__name__}); re-run `affsr prepare`"
        ) from e


def load_split(data_dir: Path, split: str, hr_bytes: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split as tensors: (lr float32 (N, C, h, w), hr float32 in [0, 1] (N, C, H, W)).

    ``hr`` is the stored uint8 divided by 255, so ``lr == A(hr)`` to float32 round-off. With
    ``hr_bytes`` it stays uint8 (a quarter of the memory: paper-scale sets are gigabytes); convert a batch
    with :func:`hr_to_float`.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    path = Path(data_dir) / f"{split}.npz"
    arrays = _read_npz(path)
    hr, lr = arrays["hr"], arrays["lr"]
    if hr.dtype != np.uint8 or hr.ndim != 4 or lr.ndim != 4 or not np.issubdtype(lr.dtype, np.floating):
        raise DataError(
            f"dataset file {path} has hr {hr.dtype}{hr.shape} / lr {lr.dtype}{lr.shape}; expected hr uint8 "
            f"(N, C, H, W) and lr float (N, C, h, w); re-run `affsr prepare`"
        )
    if hr.shape[:2] != lr.shape[:2] or (lr.shape[2] and hr.shape[2] % lr.shape[2]):
        raise DataError(f"dataset file {path}: hr {hr.shape} and lr {lr.shape} do not match; re-run `affsr prepare`")
    lr_t = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))
    hr_t = torch.from_numpy(hr)
    return lr_t, (hr_t if hr_bytes else hr_to_float(hr_t))


def hr_to_float(hr: torch.Tensor) -> torch.Tensor:
    """uint8 HR → float32 in [0, 1] (the one conversion used everywhere, so values agree bitwise)."""
    return hr.to(torch.float32) / 255.0


def load_positions(data_dir: Path, split: str) -> np.ndarray:
    """(N, 3) int64 patch positions (image index, top row, left col) of a split, for provenance checks."""
    path = Path(data_dir) / f"{split}.npz"
    arrays = _read_npz(path)
    if "positions" not in arrays:
        raise DataError(f"dataset file {path} lacks key positions; re-run `affsr prepare` to rebuild it")
    return arrays["positions"]


def load_manifest(data_dir: Path) -> dict:
    """The dataset's manifest.json as a dict (see :func:`prepare` for its keys)."""
    path = Path(data_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"dataset manifest {path} not found; run `affsr prepare` to create the dataset")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"dataset manifest {path} is corrupt ({type(e).__name__}); re-run `affsr prepare`") from e
    if not isinstance(manifest, dict):
        raise DataError(f"dataset manifest {path} is not a JSON object; re-run `affsr prepare`")
    return manifest
