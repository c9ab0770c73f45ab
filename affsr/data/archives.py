"""Image collections inside zip archives: CelebA's aligned faces and the paper-scale texture archives.

Why this module exists: CelebA ships as one zip of 202,599 JPEGs and the Kylberg grass textures as a zip
of PNGs; reading members straight from the archive (no extraction) keeps the download the single copy.
:class:`ZipImages` is the :class:`affsr.data.image_collections.ImageCollection` of such an archive,
:func:`celeba_collection` splits CelebA by its official partition, :func:`texture_images` decodes the
texture members for the patch sources. A missing, truncated or corrupt archive or member raises
:class:`affsr.errors.DataError` naming it and saying to re-run the download rule (``affsr download``).
"""

from __future__ import annotations

import fnmatch
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from affsr.config.data import SPLITS
from affsr.data.image_collections import ImageCollection
from affsr.data.image_files import decode_image
from affsr.data.splits import check_counts
from affsr.errors import DataError

__all__ = ["ZipImages", "celeba_collection", "texture_images", "CELEBA_RANGES"]

#: Official CelebA partition (list_eval_partition.txt) by file number, inclusive: 000001–162770.jpg train,
#: 162771–182637 val, 182638–202599 test.
CELEBA_RANGES: dict[str, tuple[int, int]] = {"train": (1, 162770), "val": (162771, 182637), "test": (182638, 202599)}
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError)


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


# --------------------------------------------------------------------------------------------------------
# The study's archives
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
    check_counts("caps", caps, optional=SPLITS)
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
