"""Read whole-image collections (CelebA, ImageNet, LFW faces, grass textures) and split them.

Why this module exists: the "images" datasets give one HR image per source image (CelebA: crop box → 64×64;
ImageNet: centre crop → 128×128; the embedded LFW faces: 25×25 → centre 24×24), unlike the texture sources
of :mod:`affsr.data`, which cut many patches from a few large images. This module only *reads* and *splits*
such collections; :mod:`affsr.data` crops each image with :func:`crop_resize` and writes the dataset.

Conventions: a read image is float64 in [0, 1] with shape (H, W) (grey) or (H, W, 3) (RGB); 8-bit pixels
become k/255 exactly, so ``round(255·y)`` gives back the stored bytes. Every user mistake (missing or corrupt
file, wrong folder layout, too few images) raises :class:`affsr.data.DataError` with a one-line message that
names the file or folder and says what to do.
"""

from __future__ import annotations

import abc
import fnmatch
import io
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from affsr.data import SPLITS
from affsr.errors import DataError  # the class affsr.data re-exports; importable without a cycle

__all__ = [
    "SPLITS",
    "decode_image",
    "crop_resize",
    "ImageCollection",
    "ArrayImages",
    "ZipImages",
    "FolderImages",
    "random_split",
    "fraction_split",
    "celeba_collection",
    "imagenet_collection",
    "imagenet_layout_help",
    "texture_images",
    "CELEBA_RANGES",
]

#: Official CelebA partition (list_eval_partition.txt) by file number, inclusive: 000001–162770.jpg train,
#: 162771–182637 val, 182638–202599 test.
CELEBA_RANGES: dict[str, tuple[int, int]] = {"train": (1, 162770), "val": (162771, 182637), "test": (182638, 202599)}

_JPEG_SUFFIXES = (".jpeg", ".jpg")  # compared lower-cased: ImageNet uses .JPEG, other copies .jpg/.jpeg
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # Pillow's modes for 16-bit grey PNG / TIFF
# What Pillow raises for bad data: OSError (incl. UnidentifiedImageError, "image file is truncated"),
# SyntaxError / struct.error / EOFError from format parsers, ValueError for bad headers, and
# DecompressionBombError (not an OSError) for absurd sizes.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError)


# --------------------------------------------------------------------------------------------------------
# Decoding, cropping and resizing one image
# --------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------
# Collections: split lists + read by name
# --------------------------------------------------------------------------------------------------------


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


def _open_zip(archive: Path) -> zipfile.ZipFile:
    """Open a zip archive, with DataErrors naming it (and what to do) if it is missing or not a zip."""
    if not archive.is_file():
        raise DataError(f"archive {archive} not found; re-run the download rule (affsr download) to fetch it")
    try:
        return zipfile.ZipFile(archive)
    except _ZIP_ERRORS as e:
        raise DataError(
            f"archive {archive} is not a valid zip ({type(e).__name__}: {e}); delete it and re-run the download rule (affsr download)"
        ) from e


def _read_member(zf: zipfile.ZipFile, archive: Path, member: str) -> bytes:
    """Bytes of one zip member; a missing member or a CRC / decompression failure → DataError."""
    try:
        return zf.read(member)
    except KeyError as e:
        raise DataError(f"archive {archive} has no member {member!r}; delete it and re-run the download rule (affsr download)") from e
    except _ZIP_ERRORS as e:
        raise DataError(
            f"member {member!r} of archive {archive} is corrupt ({type(e).__name__}: {e}); "
            f"delete the archive and re-run the download rule (affsr download)"
        ) from e


class ZipImages(ImageCollection):
    """Members of a zip archive (CelebA's img_align_celeba.zip), named by their member path.

    The archive is opened once, on the first ``read``, and the handle reused: CelebA has 202,599 members and
    reopening would re-parse the whole central directory for every image. Pickling drops the handle, so a
    copy sent to a worker process opens its own (a shared file offset across processes would garble reads).
    """

    def __init__(self, archive: Path, splits: dict[str, list[str]], colour: bool) -> None:
        super().__init__(splits)
        self.archive = Path(archive)
        self.colour = bool(colour)
        self._zip: zipfile.ZipFile | None = None

    def read(self, name: str) -> np.ndarray:
        if self._zip is None:
            self._zip = _open_zip(self.archive)
        data = _read_member(self._zip, self.archive, name)
        return decode_image(data, f"{self.archive}:{name}", self.colour)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None}


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
# Splits
# --------------------------------------------------------------------------------------------------------


def _check_counts(what: str, counts: dict[str, int | None], optional: tuple[str, ...]) -> None:
    """Each split's count must be an integer ≥ 0; those in ``optional`` may also be missing or None (no cap)."""
    for s in SPLITS:
        v = counts.get(s)
        if v is None and s in optional:
            continue
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
            raise DataError(f"{what}[{s!r}]={v!r} must be an integer ≥ 0")


def _sorted_unique(names: list[str]) -> list[str]:
    """``names`` sorted, so the caller's order cannot change a split; duplicates are an error."""
    ordered = sorted(str(n) for n in names)
    if len(set(ordered)) != len(ordered):
        raise DataError(f"image names repeat ({len(ordered) - len(set(ordered))} duplicates); names must be unique")
    return ordered


def random_split(names: list[str], counts: dict[str, int | None], seed: int) -> dict[str, list[str]]:
    """Split ``names`` at random: val gets counts["val"], test counts["test"], train the rest (≤ counts["train"]).

    A permutation from ``numpy.random.default_rng(seed)`` of the *sorted* names decides: its first
    counts["val"] entries are val, the next counts["test"] test, the following ones train (all of them if
    counts["train"] is missing or None). So val and test do not change when the train cap changes, and a
    larger cap only appends to train. Each split keeps the permutation's (random, deterministic) order.
    Raises DataError if fewer than val + test + 1 names.
    """
    _check_counts("counts", counts, optional=("train",))
    ordered = _sorted_unique(names)
    n_val, n_test = int(counts["val"]), int(counts["test"])
    if len(ordered) < n_val + n_test + 1:
        raise DataError(
            f"only {len(ordered)} images for val={n_val} + test={n_test} + at least 1 train; "
            f"lower the val/test counts or add images"
        )
    perm = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    return {
        "val": perm[:n_val],
        "test": perm[n_val : n_val + n_test],
        "train": perm[n_val + n_test :][: counts.get("train")],
    }


def fraction_split(names: list[str], fractions: dict[str, float], seed: int) -> dict[str, list[str]]:
    """Split a small set (e.g. 100 LFW faces) by fractions, e.g. train/val/test = 0.75/0.125/0.125.

    The sorted names are shuffled with ``numpy.random.default_rng(seed)``; val and test get round-half-up of
    their fraction × N but at least 1 each, train the rest (which must be ≥ 1). The splits are disjoint and
    cover every name. Raises DataError for fractions that are negative or do not sum to 1, or too few names.
    """
    if set(fractions) != set(SPLITS) or any(not 0.0 <= float(fractions[s]) <= 1.0 for s in SPLITS):
        raise DataError(f"fractions {fractions} need keys {', '.join(SPLITS)} with values in [0, 1]")
    if abs(sum(float(fractions[s]) for s in SPLITS) - 1.0) > 1e-6:
        raise DataError(f"fractions {fractions} sum to {sum(fractions.values())}; they must sum to 1")
    ordered = _sorted_unique(names)
    n = len(ordered)
    n_val, n_test = (max(1, int(np.floor(n * float(fractions[s]) + 0.5))) for s in ("val", "test"))
    if n - n_val - n_test < 1:
        raise DataError(f"only {n} images: too few for val={n_val}, test={n_test} and at least 1 train image")
    perm = [ordered[i] for i in np.random.default_rng(seed).permutation(n)]
    return {"train": perm[n_val + n_test :], "val": perm[:n_val], "test": perm[n_val : n_val + n_test]}


# --------------------------------------------------------------------------------------------------------
# The study's collections
# --------------------------------------------------------------------------------------------------------

_CELEBA_MEMBER = re.compile(r"(?:^|/)(\d+)\.jpg$", re.IGNORECASE)


def celeba_collection(archive: Path, caps: dict[str, int | None]) -> ZipImages:
    """CelebA's aligned faces in ``img_align_celeba.zip``, split by the official partition (colour).

    Members ``<any folder>/NNNNNN.jpg`` are assigned by number (:data:`CELEBA_RANGES`: 1–162770 train,
    162771–182637 val, 182638–202599 test; other numbers are ignored), sorted by number, and each split
    keeps its first ``caps[split]`` images (all of them if that cap is missing or None). Raises DataError
    if the archive is missing, not a zip, has no such members, numbers one image twice, or has no images in
    a split whose cap is not 0.
    """
    archive = Path(archive)
    _check_counts("caps", caps, optional=SPLITS)
    with _open_zip(archive) as zf:
        members = zf.namelist()
    by_number: dict[int, str] = {}
    for member in members:
        m = _CELEBA_MEMBER.search(member)
        if m is None:
            continue
        number = int(m.group(1))
        if number in by_number:
            raise DataError(
                f"archive {archive} has two images numbered {number}: {by_number[number]!r} and {member!r}; "
                f"delete it and re-run the download rule (affsr download)"
            )
        by_number[number] = member
    if not by_number:
        raise DataError(
            f"archive {archive} has no CelebA images (expected members like img_align_celeba/000001.jpg; "
            f"found {len(members)} members, e.g. {members[:3]}); delete it and re-run the download rule (affsr download)"
        )
    splits: dict[str, list[str]] = {}
    for s, (lo, hi) in CELEBA_RANGES.items():
        numbers = sorted(k for k in by_number if lo <= k <= hi)
        cap = caps.get(s)
        if not numbers and cap != 0:
            raise DataError(
                f"archive {archive} has no {s} images (numbers {lo:06d}–{hi:06d}.jpg); it is incomplete: "
                f"delete it and re-run the download rule (affsr download)"
            )
        splits[s] = [by_number[k] for k in numbers[:cap]]
    return ZipImages(archive, splits, colour=True)


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


def texture_images(archive: Path, pattern: str, colour: bool) -> list[np.ndarray]:
    """Every member of zip ``archive`` whose path matches the fnmatch ``pattern`` (e.g. "*.png"), decoded.

    For the paper-scale grass textures. Matching is case-sensitive and ``*`` also crosses "/" (so "*.png"
    matches "grass/a.png"); directories are skipped. Returns float64 images in [0, 1] sorted by member name,
    (H, W, 3) if ``colour`` else (H, W). Raises DataError if no member matches (listing a few members).
    """
    archive = Path(archive)
    with _open_zip(archive) as zf:
        members = [n for n in zf.namelist() if not n.endswith("/")]
        chosen = sorted(n for n in members if fnmatch.fnmatchcase(n, pattern))
        if not chosen:
            raise DataError(
                f"no member of archive {archive} matches {pattern!r} ({len(members)} members, e.g. {members[:5]}); "
                f"fix the pattern or the archive"
            )
        return [decode_image(_read_member(zf, archive, n), f"{archive}:{n}", colour) for n in chosen]
