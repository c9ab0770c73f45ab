"""Atomic file writing: every output of the pipeline goes through here.

A job killed mid-write (SLURM preemption, Ctrl-C, out of memory) must never leave a half-written file
that looks complete to Snakemake, DVC or the next step. So we write to a temp file in the same folder,
fsync it, and ``os.replace`` it onto the target (atomic on POSIX within one file system).

A verb that writes several files writes them all or none: inside ``with FileSet():`` every write lands in
its temp file and the renames happen together when the block ends without an error (see :class:`FileSet`).
Before long work, :func:`before_writing` checks every output's folder is writable (so training does not
run for an hour and then fail on its log) and removes the temp files a killed run left there.

Temp files are named ``.{name}.{pid}@{host}.{random}.tmp``: hidden, so no glob for the real file matches
them, and naming their writer, so a later run can tell a dead writer's leftovers from a live one's
(:func:`remove_stale_temps`).
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import resource
import secrets
import socket
import tempfile
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from pathlib import Path
from typing import BinaryIO, Self

import numpy as np
import pandas as pd

from affsr.errors import ConfigError

#: A temp file whose writer cannot be checked (another host, or a name from before names carried the
#: writer) is removed once it is this old: no affsr write or staged set takes that long, so such a file
#: belongs to a dead job.
STALE_AFTER_S = 24 * 3600

#: ``.{name}.{pid}@{host}.{random}.tmp``; ``random`` is mkstemp's (lower-case letters, digits, ``_``).
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9.-]*)\.[a-z0-9_]+\.tmp$")
#: ``.{name}.{random}.tmp``, as atomic_write named its temp files before they carried their writer.
_OLD_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _host() -> str:
    """This machine's name as it goes into temp names: file-name safe and short (names have 255 bytes)."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:32]


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}@{_host()}."


def _named(err: OSError, path: Path) -> OSError:
    """The same OS error about the user's file, not about the temp file (".x.png.123@node.pg3df87w.tmp")."""
    return type(err)(err.errno, err.strerror, str(path))


def _no_folder(path: Path) -> None:
    if path.is_dir():  # say so with the path given, not the temp file's name
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", str(path))


def make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, outermost first (so a set that is
    discarded, or a probe, can remove them again and leave the tree as it found it)."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made = []
    for each in reversed(missing):
        try:
            each.mkdir()
        except FileExistsError:  # made by a concurrent job meanwhile: not ours to remove
            continue
        made.append(each)
    return made


def remove_folders(made: list[Path]) -> None:
    """Remove folders :func:`make_folders` created, innermost first, where they are still empty."""
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:  # something was written there meanwhile: keep it
            pass


def _write_temp(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """``write(handle)`` into a new temp file beside ``path``, flushed to disk; return the temp file.

    On any error the temp file is removed; OS errors name ``path``."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    except OSError as err:  # e.g. a read-only place: mkstemp names the temp file it tried
        raise _named(err, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.errno is None:
            raise
        raise _named(err, path) from None
    except RuntimeError:  # torch.save's writer reports a failed write as "unexpected pos …"
        # Both judged before the temp file goes: on a disk that this very file filled, removing it frees the
        # space again, and a real full tmpfs got a traceback (RuntimeError, exit 1) instead of ENOSPC.
        full, written = _full(path.parent), _size(Path(tmp))
        Path(tmp).unlink(missing_ok=True)
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        if _at_size_limit(written):  # `ulimit -f`: was a traceback (exit 1) from `affsr train`
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: Path | str, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(handle)`` on a temp file beside ``path``, then rename it onto ``path``.

    On any error the temp file is removed and ``path`` is left as it was. Parent folders are created (and
    removed again if the write fails, so a failure leaves the tree as it was). Inside ``with FileSet():``
    the rename waits for the end of the block (all the set's files or none).
    """
    path = Path(path)
    _no_folder(path)
    made = make_folders(path.parent)
    try:
        tmp = _write_temp(path, write)
        staging = _STAGING.get()
        if staging is not None:
            staging._add(path, tmp, made)
            return
        try:
            os.replace(tmp, path)
        except BaseException as err:
            tmp.unlink(missing_ok=True)
            if isinstance(err, OSError) and err.errno is not None:
                raise _named(err, path) from None
            raise
    except BaseException:
        remove_folders(made)
        raise


_STAGING: ContextVar[FileSet | None] = ContextVar("affsr_file_set", default=None)


class FileSet:
    """The files a verb writes, renamed into place together at the end: all of them, or none.

    ``with FileSet(): ...`` — every :func:`atomic_write` in the block (any module's, e.g. ``upscale_file``'s
    output and the CLI's ``--raw``) writes its temp file beside its target as usual, but the renames wait:
    when the block ends normally they are done one after the other, and if the block raises (a failed
    write, Ctrl-C, any error) the temp files are removed and no target changes. Code inside the block
    reading a file it wrote there sees the old file: stage only writes. A nested set joins the outer one.
    The staging follows the context (``contextvars``): writes from other threads are not staged.

    If a rename fails part-way (the file system turns read-only, a quota), the files already renamed are
    put back: each target that existed is hard-linked to a hidden backup before it is replaced (moved
    aside where the file system has no hard links) and restored from it, a new one is removed.
    What remains is a window of microseconds: a process killed (SIGKILL, power loss) between two renames
    leaves the set's first files new and the others old, plus its backups and temp files, which the next
    run removes (:func:`remove_stale_temps`).
    """

    def __init__(self) -> None:
        self._staged: dict[Path, Path] = {}  # target -> its temp file, in the order written
        self._made: list[Path] = []  # folders created for the set's files (removed if it is discarded)
        self._token: Token | None = None

    def __enter__(self) -> Self:
        if _STAGING.get() is None:
            self._token = _STAGING.set(self)
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if self._token is None:  # joined an outer set: it commits
            return
        _STAGING.reset(self._token)
        self._token = None
        if kind is None:
            self._commit()
        else:
            self._discard()

    def _add(self, target: Path, tmp: Path, made: list[Path]) -> None:
        target = Path(os.path.abspath(target))
        earlier = self._staged.pop(target, None)
        if earlier is not None:  # written twice: the later content wins, as without a set
            earlier.unlink(missing_ok=True)
        self._staged[target] = tmp
        self._made.extend(made)

    def _discard(self) -> None:
        for tmp in self._staged.values():
            tmp.unlink(missing_ok=True)
        self._staged.clear()
        remove_folders(self._made)

    def _commit(self) -> None:
        done: list[tuple[Path, Path | None]] = []  # (target, backup of its old file or None if it had none)
        target = None
        try:
            for target, tmp in self._staged.items():
                backup = _backup(target)
                try:
                    os.replace(tmp, target)
                except BaseException:
                    if backup is not None and os.path.lexists(target):  # unchanged: the backup is a spare link
                        backup.unlink(missing_ok=True)
                    elif backup is not None:  # moved aside for nothing: put it back
                        done.append((target, backup))
                    raise
                done.append((target, backup))
        except BaseException as err:
            for replaced, backup in reversed(done):  # put every target back as it was
                try:
                    if backup is not None:
                        os.replace(backup, replaced)
                    else:
                        replaced.unlink(missing_ok=True)
                except OSError:  # the file system refuses even this: the next run removes the backup
                    pass
            self._discard()
            if isinstance(err, OSError) and err.errno is not None:
                raise _named(err, target) from None
            raise
        for _, backup in done:
            if backup is not None:
                backup.unlink(missing_ok=True)
        self._staged.clear()


def _backup(target: Path) -> Path | None:
    """A hidden second name for ``target``'s current file (None if there is none), so a set can put it
    back: a hard link (the target never disappears), or where the file system has none, the file moved."""
    if not os.path.lexists(target):
        return None
    backup = target.parent / f"{_temp_prefix(target)}{secrets.token_hex(4)}.tmp"
    try:
        os.link(target, backup, follow_symlinks=False)
    except OSError:
        os.replace(target, backup)
    return backup


# ---- before a verb's work: writable folders, no stale temp files ------------------------------------


def check_writable(path: Path | str) -> None:
    """Raise now, naming ``path``, if a file cannot be written there: a temp file is created in its folder
    and removed again (folders missing are made for the probe and removed too, so nothing is left). Run
    before long work, so a read-only place or a full disk is found in a second, not after an hour."""
    path = Path(path)
    _no_folder(path)
    made: list[Path] = []
    try:
        made = make_folders(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
        if _full(path.parent):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as err:
        raise _named(err, path) from None
    finally:
        remove_folders(made)


def process_alive(pid: int) -> bool:
    """Does process ``pid`` exist on this machine? (A pid reused by another process counts as alive: its
    temp files then wait for :data:`STALE_AFTER_S`.)"""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _stale(name: str, age_s: float) -> bool:
    """Is this hidden file a temp file nobody will rename any more? One of this machine whose writer is
    dead is; one of another machine, or one not naming its writer, is once older than STALE_AFTER_S.
    (This takes one host name to mean one set of pids, as on a cluster node; containers that share the
    host's name but not its pids would have to differ in name.)"""
    match = _TEMP.match(name)
    if match and match["host"] == _host():
        return not process_alive(int(match["pid"]))
    return bool(match or _OLD_TEMP.match(name)) and age_s > STALE_AFTER_S


def remove_stale_temps(folder: Path | str) -> list[Path]:
    """Remove the temp files (and set backups) of killed writes in ``folder``; return them.

    Only affsr's own names (``.{name}.{pid}@{host}.{random}.tmp``) of dead writers are touched, so a
    concurrent run writing into the same folder keeps its temp files. A folder that does not exist or
    cannot be changed is left alone (a write there reports that itself)."""
    folder = Path(folder)
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if _stale(entry.name, now - entry.stat(follow_symlinks=False).st_mtime):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone meanwhile (another run cleaned up) or not ours to remove
            continue
    return removed


def before_writing(outputs: dict[str, Path | str | None]) -> None:
    """Before a verb's work: each output (by the option naming it; None = not asked for) must be a distinct
    file that can be written, and stale temp files of killed runs go from their folders.

    Raises ConfigError when two options name the same file, OSError naming the path when one cannot be
    written (read-only place, permissions, a full disk, a file in the way)."""
    given = {option: Path(path) for option, path in outputs.items() if path is not None}
    seen: dict[str, str] = {}
    for option, path in given.items():
        key = os.path.realpath(path)
        if key in seen:
            raise ConfigError(f"{seen[key]} and {option} name the same file {path}; give each its own file")
        seen[key] = option
    for path in given.values():
        check_writable(path)
        remove_stale_temps(path.parent)


def _full(folder: Path) -> bool:
    """The file system holding ``folder`` has (almost) no space left for this user."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _at_size_limit(size: int) -> bool:
    """A file of ``size`` bytes has reached this process's file-size limit (``ulimit -f``, RLIMIT_FSIZE)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return soft != resource.RLIM_INFINITY and size >= soft


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
    # Not np.save(handle): on a real file numpy writes with C stdio (ndarray.tofile) and ignores a failed
    # flush of its buffer, so under `ulimit -f` the .npy was cut short silently and renamed into place
    # (exit 0), and a full disk gave "affsr: OSError" naming no file. Through the Python handle the
    # write raises EFBIG / ENOSPC like every other output (the arrays written here are LR-sized).
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))
