"""Read a prepared data set: the files :func:`affsr.data.prepare` wrote, as training and evaluation use them.

Layout on disk::

    out_dir/train.npz   hr uint8 (N, C, H, W)   round(255·y)
    out_dir/val.npz     lr float32 (N, C, h, w) A(hr/255), computed in float64, h = H / scale
    out_dir/test.npz    positions int64 (N, 3)  patches: (image index, top row, left col) of each HR patch
                        names str (N,)          images: the source file of each HR image
    out_dir/manifest.json   what was made and how (written last: its presence marks a complete dataset)

Why this module is apart from :mod:`affsr.data`: reading needs neither the image sources nor the operator,
so training and evaluation load data without importing how it was made. A missing, corrupt or
inconsistent file raises :class:`affsr.errors.DataError` naming the file and saying to re-run
``affsr prepare``.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from affsr.config.data import SPLITS
from affsr.errors import DataError

__all__ = ["MANIFEST_NAME", "load_split", "hr_to_float", "load_positions", "load_manifest"]

#: The manifest's file name inside a data set's folder.
MANIFEST_NAME = "manifest.json"


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
