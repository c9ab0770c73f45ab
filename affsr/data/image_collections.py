"""Image collections: a set of whole images with a fixed train / val / test assignment, read by name.

Why this module exists: an "images" data set (one HR image per source image) needs to know which images
each split has before reading any of them, and then reads them one at a time (ImageNet does not fit in
memory). :class:`ImageCollection` is that interface; :mod:`affsr.data` crops every image it reads with
:func:`affsr.data.image_files.crop_resize`. Here are the in-memory collection (the embedded LFW faces) and the folder
of files (ImageNet, scanned and re-split at random); zip archives (CelebA, texture archives) are
:mod:`affsr.data.archives`.

Conventions as in :mod:`affsr.data.image_files`: a read image is float64 in [0, 1], (H, W) grey or (H, W, 3) RGB.
Every user mistake (missing folder, wrong layout, too few images) raises :class:`affsr.errors.DataError`
with a one-line message that names the file or folder and says what to do.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path

import numpy as np

from affsr.config.data import SPLITS
from affsr.data.image_files import decode_image
from affsr.data.splits import random_split
from affsr.errors import DataError

__all__ = [
    "ImageCollection",
    "ArrayImages",
    "FolderImages",
    "imagenet_collection",
    "imagenet_layout_help",
]

_JPEG_SUFFIXES = (".jpeg", ".jpg")  # compared lower-cased: ImageNet uses .JPEG, other copies .jpg/.jpeg


class ImageCollection(abc.ABC):
    """A set of images with a fixed train / val / test assignment, read one at a time by name.

    ``splits`` maps each of :data:`SPLITS` to a list of names in a fixed (deterministic) order; the splits
    are disjoint, so no source image appears in two of them. ``read(name)`` returns float64 in [0, 1],
    (H, W) grey or (H, W, 3) colour. Use as a context manager (or call ``close``) to release open files.
    """

    def __init__(self, splits: dict[str, list[str]]) -> None:
        if set(splits) != set(SPLITS):
            raise DataError(f"splits have keys {sorted(splits)}; expected exactly {', '.join(SPLITS)}")
        self.splits: dict[str, list[str]] = {s: [str(n) for n in splits[s]] for s in SPLITS}
        seen: set[str] = set()
        for s in SPLITS:
            names = set(self.splits[s])
            if len(names) != len(self.splits[s]) or names & seen:
                raise DataError(f"split {s!r} repeats a name or shares one with another split; splits must be disjoint")
            seen |= names

    @abc.abstractmethod
    def read(self, name: str) -> np.ndarray:
        """Image ``name`` as float64 in [0, 1], (H, W) or (H, W, 3)."""

    def close(self) -> None:
        """Release open files (a later ``read`` reopens them)."""

    def __enter__(self) -> ImageCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArrayImages(ImageCollection):
    """In-memory images (the embedded LFW faces), named "0", "1", ... by their index in ``images``.

    Each image is float in [0, 1], (H, W) or (H, W, 3).
    """

    def __init__(self, images: list[np.ndarray], splits: dict[str, list[str]]) -> None:
        super().__init__(splits)
        self.images = [np.asarray(img, dtype=np.float64) for img in images]
        for i, img in enumerate(self.images):
            if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
                raise DataError(f"image {i} has shape {img.shape}; expected (H, W) or (H, W, 3)")
        valid = {str(i) for i in range(len(self.images))}
        unknown = [n for s in SPLITS for n in self.splits[s] if n not in valid]
        if unknown:
            raise DataError(f"split names {unknown[:5]} are not indices of the {len(self.images)} images")

    def read(self, name: str) -> np.ndarray:
        return self.images[int(name)]


class FolderImages(ImageCollection):
    """Image files under ``root`` (ImageNet), named by their path relative to ``root`` with "/" separators."""

    def __init__(self, root: Path, splits: dict[str, list[str]], colour: bool) -> None:
        super().__init__(splits)
        self.root = Path(root)
        self.colour = bool(colour)

    def read(self, name: str) -> np.ndarray:
        path = self.root / name
        try:
            data = path.read_bytes()
        except OSError as e:
            raise DataError(
                f"image file {path} cannot be read ({type(e).__name__}: {e}); restore it, or re-prepare the "
                f"dataset so {self.root} is scanned again"
            ) from e
        return decode_image(data, str(path), self.colour)


# --------------------------------------------------------------------------------------------------------
# ImageNet
# --------------------------------------------------------------------------------------------------------


def imagenet_layout_help(root: Path) -> str:
    """One line saying where ILSVRC-2012 training images must be put (it cannot be downloaded without an account)."""
    return (
        f"Expected {root} to be the extracted ILSVRC2012_img_train folder: one folder per class holding its "
        f"JPEGs, e.g. {Path(root) / 'n01440764' / 'n01440764_10026.JPEG'} (1000 class folders, 1,281,167 "
        f"images); extract ILSVRC2012_img_train.tar there, then each class's n*.tar into a folder of the same "
        f"name, and set that folder as the data set's `path:` in params.yaml (paper scale: paper.datasets.natural.path)"
    )


def _scan_jpegs(root: Path) -> tuple[list[tuple[str, int]], int]:
    """(relative "/"-joined path, size in bytes) of every *.jpeg / *.jpg under ``root``, and the number of *.tar.

    One ``os.scandir`` pass; the size comes from the one ``stat`` per file that DirEntry caches. Symlinks are
    followed (subsets of ImageNet are often trees of links).
    """
    found: list[tuple[str, int]] = []
    tars = 0
    stack = [("", str(root))]
    while stack:
        prefix, folder = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                rel = prefix + entry.name
                if entry.is_dir():
                    stack.append((rel + "/", entry.path))
                    continue
                lower = entry.name.lower()
                if lower.endswith(_JPEG_SUFFIXES) and entry.is_file():
                    found.append((rel, entry.stat().st_size))
                elif lower.endswith(".tar"):
                    tars += 1
    return found, tars


def imagenet_collection(
    root: Path, min_bytes: int, min_files: int, counts: dict[str, int], seed: int
) -> FolderImages:
    """ILSVRC-2012 training images under ``root``, small files dropped, split at random (colour).

    Files smaller than ``min_bytes`` are dropped (the paper drops images < 20 kB as too low resolution);
    the rest are split by :func:`random_split` (the paper: val 10,000, test 10,000, train the rest, here
    capped at counts["train"]). Raises DataError, with the expected layout (:func:`imagenet_layout_help`),
    if ``root`` is missing or not a folder, holds no JPEGs, or fewer than ``min_files``.
    """
    root = Path(root)
    help_line = imagenet_layout_help(root)
    if not root.exists():
        raise DataError(f"ImageNet folder {root} not found. {help_line}")
    if not root.is_dir():
        raise DataError(f"ImageNet path {root} is not a folder. {help_line}")
    try:
        found, tars = _scan_jpegs(root)
    except OSError as e:
        raise DataError(f"cannot list ImageNet folder {root} ({type(e).__name__}: {e}). {help_line}") from e
    if not found:
        hint = f" (found {tars} .tar files: extract them)" if tars else ""
        raise DataError(f"no images (*.JPEG, *.jpeg, *.jpg) found under {root}{hint}. {help_line}")
    if len(found) < min_files:
        raise DataError(
            f"found only {len(found)} images under {root}, fewer than min_files={min_files}; is the extraction "
            f"incomplete? {help_line}"
        )
    kept = [rel for rel, size in found if size >= min_bytes]
    try:
        splits = random_split(kept, counts, seed)
    except DataError as e:
        raise DataError(
            f"{root}: {len(found) - len(kept)} of {len(found)} images are smaller than min_bytes={min_bytes} "
            f"and were dropped; {e}"
        ) from e
    return FolderImages(root, splits, colour=True)

