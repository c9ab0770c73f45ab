"""One training job per run: ``affsr train`` holds a lock on the run's resume folder while it trains.

Two jobs on the same run would both train from the same resume state and overwrite each other's state,
checkpoint and log; the second one is refused at once, in one line naming the holder (pid, host, since
when), so a user sees which job to wait for or stop.

Why ``flock`` and not a pid file: the kernel releases the lock when its holder dies (kill -9, the OOM
killer, SLURM ending a job), so a lock left by a killed job never blocks the rerun, and nothing has to
guess whether a recorded pid is still the same process. The lock file lives in the resume folder
(``.resume/lock`` beside the checkpoint), which is no declared Snakemake output (Snakemake neither
deletes it before a rerun nor looks for it) and is in ``.dvcignore`` (DVC does not hash it). On NFS, Linux
turns ``flock`` into a lock the server holds for every client (NFSv4, or v3 with lockd), so jobs on two
nodes of a cluster exclude each other too; a mount with ``nolock`` makes locks local to each node.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from affsr.atomic_files import make_folders, remove_folders
from affsr.errors import DataError, note

LOCK_NAME = "lock"


class RunInUse(DataError):
    """Another job holds the run's lock: the message names it (pid, host, since when) and what to do."""


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it into the file."""
    try:
        who = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"pid {who['pid']} on {who['host']}, since {who['since']}"
    except (OSError, ValueError, KeyError, TypeError):  # locked a moment ago, not written yet
        return "a job that has not recorded its pid yet"


def _open_locked(path: Path) -> int:
    """The lock file at ``path``, open and locked by this process (RunInUse if another holds it)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # the folder was removed by a job finishing just now: make it again
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunInUse(f"{path.parent}: this run is being trained by another job ({holder}); wait for it "
                           "to finish, or stop it (a stopped or killed job's lock goes with it)") from None
        except OSError as err:  # a file system without locks: train anyway, but say so
            note(f"{path}: cannot lock the run ({err.strerror}); nothing stops a second job training it at once")
            return fd
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # its last holder removed this file while we opened it: lock the one at path now


@contextmanager
def run_lock(resume_dir: Path) -> Iterator[None]:
    """Hold the lock of the run whose resume state is in ``resume_dir`` for the block (RunInUse if another
    job holds it). The lock file records this job (pid, host, start time) for a second job's message; it
    is removed when the block ends, and the folders this job made for it too where they are empty (a job
    refused for a user error leaves no empty run folder behind)."""
    resume_dir = Path(resume_dir)
    path = resume_dir / LOCK_NAME
    made = make_folders(resume_dir)
    try:
        fd = _open_locked(path)
    except BaseException:
        remove_folders(made)
        raise
    try:
        since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        yield
    finally:
        # Removed while still locked: a job that opened this file meanwhile notices (its inode is no longer
        # the one at path) and locks a new file, so two jobs never both hold "the" lock.
        path.unlink(missing_ok=True)
        os.close(fd)
        remove_folders(made)  # kept where they hold something: a resume state, a new job's lock, the outputs
