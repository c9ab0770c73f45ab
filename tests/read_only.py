"""A folder the operating system really refuses to write into, for tests of OS faults.

``chmod`` does not stop root (tests may run as root in containers and CI), so as root the folder is
bind-mounted onto itself read-only (EROFS, exactly a read-only place), or where mounting is not allowed
made immutable with ``chattr +i`` (EPERM); as another user it is ``chmod 555`` (EACCES). Every mechanism
is checked by trying to create a file; where none works the test is skipped rather than passing on a
folder that accepts writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _refuses_writes(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return True
    probe.unlink()
    return False


def _run(*command: str) -> bool:
    return shutil.which(command[0]) is not None and subprocess.run(command, capture_output=True, check=False).returncode == 0


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """Make ``folder`` (made if missing) refuse new files for the block; its files stay readable."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        mode = folder.stat().st_mode & 0o777
        folder.chmod(0o555)
        undo = [lambda: folder.chmod(mode)]
    elif _run("mount", "--bind", str(folder), str(folder)):
        undo = [lambda: _run("umount", str(folder))]
        if not _run("mount", "-o", "remount,ro,bind", str(folder)):
            undo[0]()
            undo = []
    else:
        undo = []
    if os.geteuid() == 0 and not undo and _run("chattr", "+i", str(folder)):
        undo = [lambda: _run("chattr", "-i", str(folder))]
    try:
        if not undo or not _refuses_writes(folder):
            pytest.skip("no way to make a folder read-only here")
        yield folder
    finally:
        for step in undo:
            step()
