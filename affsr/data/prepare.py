"""Prepare (LR, HR) datasets: the ``affsr prepare`` step.

Why this module exists: the paper's observation model is noise-free, ``x = A y`` (Eq. 5), and *all* LR data
are made with the same operator ``A`` that the model's affine projection uses. So a dataset here is a set of
HR images ``y`` plus their LR images ``x = A y`` computed with the very operator object passed in.

Where the images come from is :mod:`affsr.data.sources`. Patch sources are cut into random patches from
disjoint row bands of each image (:mod:`affsr.data.patches`, :func:`affsr.data.splits.band_ranges`); image
collections give one HR image per source image, split by image (:func:`affsr.data.image_files.crop_resize`), so no
source pixel appears in two splits. :func:`prepare` writes the files that :mod:`affsr.data.load` reads
(layout described there); the readers are re-exported here (``affsr.data.load_split`` etc.) for callers
that know the data set as one module. Nothing in this module touches the network.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from affsr.atomic_files import FileSet, write_json, write_npz
from affsr.config.data import SPLITS
from affsr.data import sources
from affsr.data.load import MANIFEST_NAME, hr_to_float, load_manifest, load_positions, load_split
from affsr.data.patches import load_source, patch_splits
from affsr.data.sources import SourceSpec
from affsr.data.splits import BAND_FRACTIONS, band_ranges
from affsr.errors import DataError

__all__ = [
    "DataError",
    "SPLITS",
    "BAND_FRACTIONS",
    "band_ranges",
    "load_source",
    "prepare",
    "mirrored",
    "load_split",
    "hr_to_float",
    "load_positions",
    "load_manifest",
    "MANIFEST_NAME",
]

_OP_CHUNK = 256  # patches per operator call when making LR images (bounds float64 memory)


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


def _image_splits(
    source: str, spec: SourceSpec, hr_size: int, crop: tuple[int, ...], seed: int, progress: bool
) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """One HR image per source image, cropped and resized (images layout); the split is the source's.

    Returns (arrays, details) like :func:`affsr.data.patches.patch_splits`, with ``names`` (the source file of
    each image) in place of ``positions``.
    """
    from affsr.data.image_files import crop_resize  # lazily: Pillow is not needed to load a prepared data set

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
                            "then resized to hr_size (affsr.data.image_files.crop_resize)"}
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
    dataset: str = "",
) -> dict:
    """Make a data set from ``source``: HR images, their LR images made with ``op``, and a manifest.

    Args:
        source: a key of :data:`affsr.data.sources.SOURCES`.
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
        crop: images layout only: the crop box before resizing (see :func:`affsr.data.image_files.crop_resize`).
        spec: what an external source reads (downloaded archive, local folder, filters).
        progress: show a progress bar while decoding image collections.
        mirror_train: append the left-right mirror of every training HR image (:func:`mirrored`); val and
            test stay as they are.
        dataset: the params.yaml name of the data set, recorded so that a run or a checkpoint of another
            data set is refused on these data ("" records none).

    Splits never share source pixels: patch sources cut train from the top 75 % of each image's rows,
    val from the next 12.5 %, test from the last 12.5 % (:func:`affsr.data.splits.band_ranges`); image collections are split
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
        arrays, details = patch_splits(source, spec, hr_size, scale, counts, seed)
    else:
        arrays, details = _image_splits(source, spec, hr_size, crop, seed, progress)
    if mirror_train:
        arrays["train"] = mirrored(arrays["train"])
    for split in SPLITS:
        arrays[split]["lr"] = _downsample(op, arrays[split]["hr"])

    manifest = {
        **({"dataset": dataset} if dataset else {}),
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

    # The splits and the manifest land together, the manifest last (FileSet): a write that fails (a disk
    # filling up, a read-only place) leaves an earlier data set as it was, and no folder where there was
    # none. (The old manifest used to be deleted first, so a full disk left old splits without a manifest:
    # no data set at all.)
    with FileSet():
        for split in SPLITS:
            write_npz(out_dir / f"{split}.npz", **arrays[split])
        write_json(out_dir / MANIFEST_NAME, manifest)
    return manifest

