"""Atomic file writing: every output of the pipeline goes through here.

A job killed mid-write (SLURM preemption, Ctrl-C, out of memory) must never leave a half-written file
that looks complete to Snakemake, DVC or the next step. So we write to a temp file in the same folder,
fsync it, and ``os.replace`` it onto the target (atomic on POSIX within one file system).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import pandas as pd


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path | str, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(handle)`` on a temp file beside ``path``, then rename it onto ``path``.

    On any error the temp file is removed and ``path`` is left as it was. Parent folders are created.
    """
    path = Path(path)
    if path.is_dir():  # say so with the path given, not the temp file's name
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except OSError as err:  # name the user's file, not the temp file (".x.png.pg3df87w.tmp")
        Path(tmp).unlink(missing_ok=True)
        if err.errno is None:
            raise
        raise type(err)(err.errno, err.strerror, str(path)) from None
    except RuntimeError as err:  # torch.save's writer reports a failed write as "unexpected pos …"
        Path(tmp).unlink(missing_ok=True)
        if _full(path.parent):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _full(folder: Path) -> bool:
    """The file system holding ``folder`` has (almost) no space left for this user."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20


def write_text(path: Path | str, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json(path: Path | str, obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def write_csv(path: Path | str, frame: pd.DataFrame, **to_csv: object) -> None:
    write_text(path, frame.to_csv(index=False, **to_csv))


def write_npz(path: Path | str, compressed: bool = True, **arrays: np.ndarray) -> None:
    save = np.savez_compressed if compressed else np.savez
    atomic_write(path, lambda handle: save(handle, **arrays))


def write_npy(path: Path | str, array: np.ndarray) -> None:
    atomic_write(path, lambda handle: np.save(handle, array))
