"""Tests for affsr.atomic_files: atomic writes (all or nothing, never a temp file left) and the typed writers."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affsr import atomic_files as files
from affsr.atomic_files import atomic_write, write_csv, write_json, write_npy, write_npz, write_text


class Boom(RuntimeError):
    pass


def _half_then_fail(handle) -> None:
    handle.write(b"half a file")
    handle.flush()
    raise Boom("disk full, say")


def _only(folder: Path) -> list[str]:
    """Every entry of ``folder``, hidden temp files included."""
    return sorted(p.name for p in folder.iterdir())


# ---- all or nothing -----------------------------------------------------------------------------------


def test_failed_write_leaves_no_file_and_no_temp_file(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(Boom):
        atomic_write(target, _half_then_fail)
    assert _only(tmp_path) == []


def test_failed_write_keeps_the_old_file_intact(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"psnr": 21.5})
    before = target.read_bytes()
    with pytest.raises(Boom):
        atomic_write(target, _half_then_fail)
    assert target.read_bytes() == before
    assert _only(tmp_path) == ["metrics.json"]


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_failure_after_the_data_is_written_cleans_up_too(tmp_path, monkeypatch, where):
    """fsync or the rename itself failing (e.g. EIO, a vanished folder): the temp file goes, the old file stays."""
    target = tmp_path / "log.txt"
    write_text(target, "old\n")

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, f"{where} failed")

    monkeypatch.setattr(files.os, where, fail)
    with pytest.raises(OSError, match=f"{where} failed"):
        write_text(target, "new\n")
    monkeypatch.undo()
    assert target.read_text() == "old\n"
    assert _only(tmp_path) == ["log.txt"]


def test_ctrl_c_while_writing_cleans_up(tmp_path):
    """KeyboardInterrupt is a BaseException, not an Exception: it must still remove the temp file."""

    def interrupted(handle):
        handle.write(b"x" * 100)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "a.npy", interrupted)
    assert _only(tmp_path) == []


def test_a_process_killed_mid_write_leaves_the_old_file_whole(tmp_path):
    """The case the module exists for: a job killed mid-write (no Python cleanup runs) leaves at most a
    hidden temp file beside the target — never a half-written target that looks complete."""
    target = tmp_path / "model.csv"
    write_text(target, "step,loss\n1,0.5\n")
    script = (
        "import os, sys\n"
        "from affsr.atomic_files import atomic_write\n"
        "def die(handle):\n"
        "    handle.write(b'step,loss\\n1,0.4\\n2,')\n"
        "    handle.flush()\n"
        "    os._exit(9)\n"  # like SIGKILL: no finally, no except
        "atomic_write(sys.argv[1], die)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, timeout=60, check=False)
    assert done.returncode == 9, done.stderr.decode()
    assert target.read_text() == "step,loss\n1,0.5\n"
    leftovers = [name for name in _only(tmp_path) if name != "model.csv"]
    # the leftover (if any) is hidden and named so that no glob for the real file matches it
    assert all(name.startswith(".model.csv.") and name.endswith(".tmp") for name in leftovers), leftovers


def test_overwrite_replaces_the_whole_file(tmp_path):
    target = tmp_path / "notes.txt"
    write_text(target, "a much longer first version\n" * 10)
    write_text(target, "short\n")
    assert target.read_text() == "short\n"
    assert _only(tmp_path) == ["notes.txt"]


# ---- where files go -----------------------------------------------------------------------------------


def test_parent_folders_are_created(tmp_path):
    target = tmp_path / "results" / "grass" / "affgan" / "metrics.json"
    write_json(target, [1, 2])
    assert json.loads(target.read_text()) == [1, 2]
    assert _only(target.parent) == ["metrics.json"]


def test_a_string_path_works(tmp_path):
    write_text(str(tmp_path / "s.txt"), "ok")
    assert (tmp_path / "s.txt").read_text() == "ok"


@pytest.mark.parametrize("writer", [
    lambda p: write_text(p, "x"),
    lambda p: write_json(p, {}),
    lambda p: write_csv(p, pd.DataFrame({"a": [1]})),
    lambda p: write_npz(p, a=np.zeros(2)),
    lambda p: write_npy(p, np.zeros(2)),
], ids=["text", "json", "csv", "npz", "npy"])
def test_a_folder_as_target_is_an_error_naming_it(tmp_path, writer):
    folder = tmp_path / "results"
    (folder / "inside").mkdir(parents=True)
    with pytest.raises(IsADirectoryError) as info:
        writer(folder)
    err = info.value
    assert err.errno == errno.EISDIR and err.filename == str(folder)
    assert "is a folder; give a file name" in str(err) and str(folder) in str(err)
    assert _only(tmp_path) == ["results"] and _only(folder) == ["inside"]  # nothing written anywhere


def test_new_files_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "shared.txt", "readable by the group and others")
        assert (tmp_path / "shared.txt").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        write_text(tmp_path / "private.txt", "only mine")
        assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600
        assert os.umask(0o077) == 0o077  # reading the umask left it as it was
    finally:
        os.umask(old)


# ---- the typed writers round-trip ---------------------------------------------------------------------


def test_text_is_utf8(tmp_path):
    text = "A⁺x — σ = 1 px; ŷ ∈ [0, 1]\nsecond line\n"
    write_text(tmp_path / "t.md", text)
    assert (tmp_path / "t.md").read_bytes() == text.encode("utf-8")


def test_json_round_trips_indented_with_a_final_newline(tmp_path):
    obj = {"method": "affgan", "psnr": 21.25, "steps": [5, 10], "ok": True, "note": None, "σ": "ü"}
    write_json(tmp_path / "m.json", obj)
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text) == obj
    assert text.endswith("}\n") and '\n  "method": "affgan"' in text


def test_csv_round_trips_without_the_index(tmp_path):
    frame = pd.DataFrame({"step": [5, 10, 15], "loss_pixel": [0.125, 0.0625, 1 / 3], "method": ["mse"] * 3},
                         index=[7, 8, 9])
    write_csv(tmp_path / "log.csv", frame)
    back = pd.read_csv(tmp_path / "log.csv")
    assert list(back.columns) == ["step", "loss_pixel", "method"]
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True), check_exact=True)


def test_csv_passes_options_to_pandas(tmp_path):
    write_csv(tmp_path / "r.csv", pd.DataFrame({"a": [1 / 3]}), float_format="%.3f", sep=";")
    assert (tmp_path / "r.csv").read_text() == "a\n0.333\n"
    write_csv(tmp_path / "r.csv", pd.DataFrame({"a": [1], "b": [2]}), sep=";")
    assert (tmp_path / "r.csv").read_text() == "a;b\n1;2\n"


@pytest.mark.parametrize("compressed", [True, False])
def test_npz_round_trips_and_compresses_when_asked(tmp_path, compressed):
    arrays = {"lr": np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4),
              "hr": np.zeros((2, 1, 16, 16), dtype=np.uint8), "names": np.array(["a", "bb"])}
    write_npz(tmp_path / "split.npz", compressed=compressed, **arrays)
    with np.load(tmp_path / "split.npz") as stored:
        assert set(stored.files) == set(arrays)
        for key, value in arrays.items():
            assert stored[key].dtype == value.dtype and np.array_equal(stored[key], value)
    with zipfile.ZipFile(tmp_path / "split.npz") as archive:
        methods = {info.compress_type for info in archive.infolist()}
    assert methods == ({zipfile.ZIP_DEFLATED} if compressed else {zipfile.ZIP_STORED})


def test_npy_round_trips_dtype_and_shape(tmp_path):
    for array in (np.random.default_rng(0).random((3, 2, 5)), np.arange(6, dtype=np.int16).reshape(2, 3),
                  np.array(2.5, dtype=np.float32)):
        write_npy(tmp_path / "a.npy", array)
        back = np.load(tmp_path / "a.npy")
        assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)
    assert _only(tmp_path) == ["a.npy"]


# ---- several files as one: FileSet ----------------------------------------------------------------------


def test_a_file_set_renames_its_files_only_at_the_end(tmp_path):
    with files.FileSet():
        write_text(tmp_path / "a.csv", "new a\n")
        write_text(tmp_path / "sub" / "b.md", "new b\n")
        assert not (tmp_path / "a.csv").exists() and not (tmp_path / "sub" / "b.md").exists()
    assert (tmp_path / "a.csv").read_text() == "new a\n" and (tmp_path / "sub" / "b.md").read_text() == "new b\n"
    assert _only(tmp_path) == ["a.csv", "sub"] and _only(tmp_path / "sub") == ["b.md"]


@pytest.mark.parametrize("failure", [Boom, KeyboardInterrupt])
def test_a_file_set_that_fails_changes_nothing(tmp_path, failure):
    """An error (or Ctrl-C) after some files of the set were written: none lands, no temp file or folder made
    for the set is left, the old files are as they were."""
    write_text(tmp_path / "a.csv", "old a\n")
    with pytest.raises(failure), files.FileSet():
        write_text(tmp_path / "a.csv", "new a\n")
        write_text(tmp_path / "new" / "deeper" / "b.npy", "new b\n")
        raise failure()
    assert (tmp_path / "a.csv").read_text() == "old a\n"
    assert _only(tmp_path) == ["a.csv"]


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard links", "no hard links"])
def test_a_rename_failing_mid_set_puts_back_the_files_already_renamed(tmp_path, monkeypatch, hard_links):
    """The third rename fails (say the place turned read-only): the first target gets its old file back,
    the second (new) one is removed again, and the error names the user's third file."""
    write_text(tmp_path / "1.csv", "old 1\n")
    write_text(tmp_path / "3.csv", "old 3\n")
    replace = os.replace
    failed = []

    def third_fails(src, dst):  # once: the rename of the new 3.csv (putting the old one back works)
        if str(dst).endswith("3.csv") and not failed:
            failed.append(src)
            raise OSError(errno.EROFS, "Read-only file system", src)
        replace(src, dst)

    monkeypatch.setattr(files.os, "replace", third_fails)
    if not hard_links:  # a file system without them: the old file is moved aside instead
        monkeypatch.setattr(files.os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EPERM, "no links")))
    with pytest.raises(OSError) as caught, files.FileSet():
        for name in ("1.csv", "2.csv", "3.csv"):
            write_text(tmp_path / name, f"new {name[0]}\n")
    monkeypatch.undo()
    assert caught.value.errno == errno.EROFS and caught.value.filename == str(tmp_path / "3.csv")
    assert (tmp_path / "1.csv").read_text() == "old 1\n" and (tmp_path / "3.csv").read_text() == "old 3\n"
    assert _only(tmp_path) == ["1.csv", "3.csv"]  # no 2.csv, no temp file, no backup


def test_a_nested_file_set_commits_with_the_outer_one(tmp_path):
    with pytest.raises(Boom), files.FileSet():
        with files.FileSet():
            write_text(tmp_path / "inner.txt", "x")
        assert not (tmp_path / "inner.txt").exists()
        raise Boom()
    assert _only(tmp_path) == []


def test_a_file_written_twice_in_a_set_keeps_the_last_content(tmp_path):
    with files.FileSet():
        write_text(tmp_path / "a.txt", "first")
        write_text(str(tmp_path / "a.txt"), "second")
    assert (tmp_path / "a.txt").read_text() == "second" and _only(tmp_path) == ["a.txt"]


# ---- before the work: writable places, stale temp files -------------------------------------------------


def test_temp_files_name_their_writer(tmp_path):
    seen = []
    atomic_write(tmp_path / "m.pt", lambda handle: seen.extend(p.name for p in tmp_path.iterdir()))
    (name,) = seen
    match = files._TEMP.match(name)
    assert match and match["name"] == "m.pt" and int(match["pid"]) == os.getpid() and match["host"] == files._host()


def _killed_writer(target: Path) -> None:
    """A real process killed (SIGKILL) in the middle of writing ``target``: its temp file stays behind."""
    script = ("import os, signal, sys\n"
              "from affsr.atomic_files import atomic_write\n"
              "def die(handle):\n"
              "    handle.write(b'half a state')\n"
              "    handle.flush()\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              "atomic_write(sys.argv[1], die)\n")
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, timeout=60, check=False)
    assert done.returncode == -9, done.stderr.decode()


def _live_writer(target: Path) -> subprocess.Popen:
    """A process in the middle of writing ``target`` (it waits there until killed); returns once its temp file exists."""
    script = ("import sys, time\n"
              "from affsr.atomic_files import atomic_write\n"
              "def wait(handle):\n"
              "    handle.write(b'partial')\n"
              "    handle.flush()\n"
              "    print('writing', flush=True)\n"
              "    time.sleep(120)\n"
              "atomic_write(sys.argv[1], wait)\n")
    process = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "writing\n"
    return process


def test_stale_temp_files_of_dead_writers_go_and_live_writers_keep_theirs(tmp_path):
    _killed_writer(tmp_path / "state.pt")
    (dead,) = [p.name for p in tmp_path.iterdir()]
    assert dead.startswith(".state.pt.") and dead.endswith(".tmp")
    live = _live_writer(tmp_path / "log.csv")
    try:
        (writing,) = [p.name for p in tmp_path.iterdir() if p.name.startswith(".log.csv.")]
        far = files.STALE_AFTER_S + 60
        other_host_new = tmp_path / ".model.pt.123@elsewhere.abcd1234.tmp"
        other_host_old = tmp_path / ".model.pt.456@elsewhere.efgh5678.tmp"
        unnamed_old = tmp_path / ".model.pt.x7k2m9q1.tmp"  # as temp files were named before they carried a pid
        for path in (other_host_new, other_host_old, unnamed_old, tmp_path / ".notes.tmp", tmp_path / "keep.tmp"):
            path.write_text("x")
        for path in (other_host_old, unnamed_old, tmp_path / ".notes.tmp", tmp_path / "keep.tmp"):
            os.utime(path, (time.time() - far, time.time() - far))
        removed = files.remove_stale_temps(tmp_path)
        assert sorted(p.name for p in removed) == sorted([dead, other_host_old.name, unnamed_old.name])
        assert _only(tmp_path) == sorted([writing, other_host_new.name, ".notes.tmp", "keep.tmp"])
    finally:
        live.kill()
        live.wait()


def test_check_writable_leaves_nothing_behind(tmp_path):
    files.check_writable(tmp_path / "a" / "b" / "model.pt")
    assert _only(tmp_path) == []


@pytest.mark.parametrize("where", ["the folder", "a parent"])
def test_check_writable_refuses_a_read_only_place_naming_the_users_path(tmp_path, where):
    from read_only import read_only

    target = tmp_path / "ro" / "log.csv" if where == "the folder" else tmp_path / "ro" / "new" / "log.csv"
    with read_only(tmp_path / "ro"):
        with pytest.raises(OSError) as caught:
            files.check_writable(target)
        assert caught.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
        assert caught.value.filename == str(target)
        assert _only(tmp_path / "ro") == []


def test_check_writable_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "a_file").write_text("keep")
    with pytest.raises(NotADirectoryError) as caught:
        files.check_writable(tmp_path / "a_file" / "out.csv")
    assert caught.value.filename == str(tmp_path / "a_file" / "out.csv")
    with pytest.raises(IsADirectoryError):
        files.check_writable(tmp_path)


def test_before_writing_refuses_two_options_naming_one_file(tmp_path):
    from affsr.errors import ConfigError

    with pytest.raises(ConfigError, match="--out and --samples name the same file"):
        files.before_writing({"--out": tmp_path / "x.npz", "--samples": str(tmp_path / "." / "x.npz"),
                              "--other": None})
