"""Prepare and load (LR, HR) patch datasets.

Why this module exists: the paper's observation model is noise-free, ``x = A y`` (Eq. 5), and *all* LR data
are made with the same operator ``A`` that the model's affine projection uses. So a dataset here is a set of
HR patches ``y`` plus their LR images ``x = A y`` computed with the very operator object passed in.

Layout on disk (written by :func:`prepare`, read by :func:`load_split` / :func:`load_manifest`)::

    out_dir/train.npz   hr uint8 (N, C, H, W)   round(255·y)
    out_dir/val.npz     lr float32 (N, C, h, w) A(hr/255), computed in float64, h = H / scale
    out_dir/test.npz    positions int64 (N, 3)  (image index, top row, left col) of each HR patch
    out_dir/manifest.json   what was made and how (written last: its presence marks a complete dataset)

Splits come from disjoint regions of each source image (horizontal bands, see :func:`band_ranges`), so no
source pixel appears in two splits. Nothing in this module touches the network.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from affsr.files import write_json, write_npz

__all__ = [
    "DataError",
    "SOURCES",
    "SPLITS",
    "BAND_FRACTIONS",
    "band_ranges",
    "load_source",
    "prepare",
    "load_split",
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


class DataError(ValueError):
    """A dataset file or setting is missing, corrupt or inconsistent; the message says which and what to do."""


# --------------------------------------------------------------------------------------------------------
# Image sources (embedded in scikit-image: no network access needed)
# --------------------------------------------------------------------------------------------------------


def _unit_float(img: np.ndarray) -> np.ndarray:
    """uint8 image → float64 in [0, 1] (values k/255, so ``round(255·y)`` recovers the bytes exactly)."""
    return np.asarray(img, dtype=np.float64) / 255.0


def _skimage(name: str) -> Callable[[], list[np.ndarray]]:
    """A source made of one scikit-image sample image, loaded lazily (import and decode only when asked)."""

    def load() -> list[np.ndarray]:
        import skimage.data

        return [_unit_float(getattr(skimage.data, name)())]

    load.__doc__ = f"[skimage.data.{name}()] as float64 in [0, 1]."
    return load


#: name → loader returning a list of images, each float in [0, 1], shape (H, W) grey or (H, W, 3) colour.
#: All images of one source must have the same number of channels. To add a source, add an entry here.
SOURCES: dict[str, Callable[[], list[np.ndarray]]] = {
    "skimage_grass": _skimage("grass"),  # 512×512 grey grass texture (the paper's grass set is not public)
    "skimage_gravel": _skimage("gravel"),  # 512×512 grey texture
    "skimage_brick": _skimage("brick"),  # 512×512 grey texture
    "skimage_astronaut": _skimage("astronaut"),  # 512×512 RGB photograph
}


def load_source(source: str) -> list[np.ndarray]:
    """Load a source's images as float64 arrays of shape (C, H, W) in [0, 1], C ∈ {1, 3}.

    Raises DataError for an unknown name, a malformed image or mixed channel counts.
    """
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}; known sources: {', '.join(sorted(SOURCES))}")
    images = SOURCES[source]()
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
    if hr_size % scale != 0:
        raise DataError(
            f"hr_size={hr_size} is not divisible by the operator scale={scale}; "
            f"choose a multiple of {scale} (e.g. {max(scale, hr_size - hr_size % scale)})"
        )
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


def prepare(
    source: str,
    out_dir: Path,
    hr_size: int,
    op: Any,
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int,
) -> dict:
    """Cut random HR patches from ``source``, make their LR images with ``op`` and write the dataset.

    Args:
        source: a key of :data:`SOURCES`.
        out_dir: folder to write ``{train,val,test}.npz`` and ``manifest.json`` into (created if missing;
            existing files there are replaced).
        hr_size: HR patch side in pixels; must be divisible by ``op.scale`` and fit in every band.
        op: downsampling operator: ``op(y)`` maps torch (B, C, H, W) → (B, C, H/s, W/s); ``op.scale``;
            ``op.describe()`` → JSON-able dict (recorded in the manifest).
        n_train, n_val, n_test: patch counts per split.
        seed: the patches are a deterministic function of (source, hr_size, counts, seed). Each split draws
            from its own child stream of ``numpy.random.default_rng(seed)`` (``Generator.spawn``), so the
            val/test patches do not change when n_train changes.

    Splits: train patches lie in the top 75 % of each image's rows, val in the next 12.5 %, test in the
    last 12.5 % (:func:`band_ranges`); a patch lies wholly inside its band, so no pixel is shared.

    Returns the manifest dict (also written to ``out_dir/manifest.json``).
    """
    out_dir = Path(out_dir)
    scale = int(op.scale)
    images = load_source(source)
    _check_sizes(source, images, hr_size, scale)
    counts = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}

    rngs = dict(zip(SPLITS, np.random.default_rng(seed).spawn(len(SPLITS))))
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for split in SPLITS:
        positions = _sample_positions(rngs[split], images, split, hr_size, counts[split])
        hr = _cut(images, positions, hr_size)
        arrays[split] = {"hr": hr, "lr": _downsample(op, hr), "positions": positions}

    manifest = {
        "source": source,
        "hr_size": int(hr_size),
        "lr_size": int(hr_size) // scale,
        "scale": scale,
        "channels": int(images[0].shape[0]),
        "counts": counts,
        "seed": int(seed),
        "band_fractions": dict(BAND_FRACTIONS),
        "bands": {s: [list(band_ranges(img.shape[1])[s]) for img in images] for s in SPLITS},
        "bands_note": "per image, half-open row ranges [start, stop); a patch's rows lie inside its band",
        "image_shapes": [list(img.shape) for img in images],
        "operator": op.describe(),
        "files": {s: f"{s}.npz" for s in SPLITS},
        "formats": {
            "hr": "uint8 (N, C, H, W) = round(255*y)",
            "lr": "float32 (N, C, h, w) = A(hr/255) computed in float64",
            "positions": "int64 (N, 3) = (image index, top row, left col) of each HR patch",
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


def load_split(data_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split as tensors: (lr float32 (N, C, h, w), hr float32 in [0, 1] (N, C, H, W)).

    ``hr`` is the stored uint8 divided by 255, so ``lr == A(hr)`` to float32 round-off.
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
    hr_t = torch.from_numpy(hr.astype(np.float32) / np.float32(255.0))
    return lr_t, hr_t


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
