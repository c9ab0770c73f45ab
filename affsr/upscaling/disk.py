"""Images on disk for `affsr upscale`: the network's raw output and the output's samples, read and written a
band of rows at a time, in a work folder beside the output that is removed when the command ends.

Why on disk: an output of 4096² colour is 400 MB in float64, and a photo of 16384² is 6.4 GB; held in
memory (as before) the process peaked at 2.4 GB for 4096² and could not go further. Every step of
`upscale` is local (:mod:`affsr.operators.row_bands`), so the HR image only ever needs a band of rows in
memory. Each read or write maps the file afresh (``np.memmap``) and copies the rows out, so pages of the
file leave the process when the call returns (they stay in the OS's page cache, which is not the
process's memory and is given back under pressure).

The work folder is ``.<output name>.<pid>.work`` beside the output (the same disk as the file the user
asked for, not /tmp, which is often memory); a folder left by a killed run (its pid no longer alive on
this machine) is removed by the next `upscale` of the same output.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from affsr.atomic_files import process_alive
from affsr.errors import DataError

__all__ = ["DiskImage", "work_folder", "remove_stale", "give_back_memory"]


class DiskImage:
    """A (C, H, W) array of ``dtype`` in a file, read and written by rows (the
    :class:`~affsr.operators.row_bands.HRRows` protocol: ``rows(index)`` → float64 tensor)."""

    def __init__(self, path: Path, shape: tuple[int, int, int], dtype=np.float64, offset: int = 0,
                 create: bool = True):
        self.path, self.shape, self.dtype, self.offset = Path(path), tuple(shape), np.dtype(dtype), offset
        if create:
            np.memmap(self.path, self.dtype, "w+", shape=self.shape).flush()  # a sparse file of the right size

    def _map(self, mode: str = "r") -> np.memmap:
        return np.memmap(self.path, self.dtype, mode, offset=self.offset, shape=self.shape)

    def channel(self, c: int) -> "DiskImage":
        """Channel c as a (1, H, W) image on the same file."""
        _, height, width = self.shape
        return DiskImage(self.path, (1, height, width), self.dtype,
                         self.offset + c * height * width * self.dtype.itemsize, create=False)

    def rows(self, index: np.ndarray) -> Tensor:
        """Rows ``index`` (int array) of every channel: (C, len(index), W) float64."""
        return torch.from_numpy(self.block(index).astype(np.float64, copy=False))

    def block(self, index: np.ndarray | slice) -> np.ndarray:
        """Rows ``index`` of every channel as stored: (C, n, W) of ``dtype``, a copy."""
        mapped = self._map()
        try:
            return np.array(mapped[:, index])
        finally:
            del mapped

    def write(self, top: int, block: np.ndarray) -> None:
        """Rows [top, top + n) of every channel from ``block`` (C, n, W) (converted to ``dtype``)."""
        mapped = self._map("r+")
        try:
            mapped[:, top:top + block.shape[1]] = block
            mapped.flush()
        finally:
            del mapped

    @contextlib.contextmanager
    def plane(self, c: int) -> Iterator[np.memmap]:
        """Channel c as a writable (H, W) memmap, for element-wise edits (the rounding repair); unmapped after."""
        mapped = self._map("r+")
        try:
            yield mapped[c]
            mapped.flush()
        finally:
            del mapped


def give_back_memory() -> None:
    """Return freed heap memory to the system (glibc's ``malloc_trim``; nothing elsewhere). Why: the steps
    of `upscale` free their bands as they go, but glibc keeps freed blocks below its (adaptive, up to 32
    MB) mmap threshold in its heap, so the process's footprint grew by ~130 MB per step at 4096² although
    nothing was held; trimmed between steps it stays at what is live."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc
        pass


def remove_stale(target: Path) -> list[Path]:
    """Remove work folders of earlier `upscale` runs of ``target`` whose process is gone; the ones removed."""
    target = Path(target)
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[^.]+\.work$")
    removed = []
    for entry in target.parent.glob(f".{target.name}.*.work") if target.parent.is_dir() else []:
        match = pattern.match(entry.name)
        if match and entry.is_dir() and not process_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _gb(size: int) -> str:
    """Bytes in GB: two decimals, or two significant digits below 1 GB (a small disk said "needs 0.00 GB
    free (0.00 GB free)")."""
    return f"{size / 1e9:.2f}" if size >= 1e9 else f"{size / 1e9:.2g}"


def _about_work_files(err: OSError, folder: Path | None) -> bool:
    """Is ``err`` about no file, or about a file in the work folder ``folder`` (not the user's own files)?"""
    return err.filename is None or (folder is not None and Path(err.filename).parent == folder)


@contextlib.contextmanager
def work_folder(target: Path, needed_bytes: int) -> Iterator[Path]:
    """A fresh work folder beside ``target`` (after removing stale ones), removed when the block ends
    however it ends (with the output's folders, if this call made them and the block failed). DataError in one line, before anything is computed, when the disk holding it has
    less free space than ``needed_bytes`` (the work files plus the output)."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    made = [folder for folder in [parent, *parent.parents] if not folder.exists()]  # to remove again on failure
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    folder = None
    try:
        usage = shutil.disk_usage(parent)
        if usage.free < needed_bytes:
            raise DataError(f"{target}: upscale needs {_gb(needed_bytes)} GB free beside the output for its "
                            f"work files and the output ({_gb(usage.free)} GB free on that disk); free some "
                            "space or write the output to another disk")
        folder = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".work"))
        yield folder
    except BaseException as err:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        for made_folder in made:  # innermost first: only folders this call made, and only if still empty
            with contextlib.suppress(OSError):
                made_folder.rmdir()
        if isinstance(err, OSError) and err.errno is not None and _about_work_files(err, folder):
            # A work file could not be written (`ulimit -f`, a disk filled meanwhile): numpy's memmap names
            # no file, so the CLI said "affsr: error: affsr: file too large"; name the output asked for.
            raise OSError(err.errno, err.strerror, str(target)) from None
        raise
    shutil.rmtree(folder, ignore_errors=True)
