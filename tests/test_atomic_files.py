"""Tests for affsr.atomic_files: atomic writes (all or nothing, never a temp file left) and the typed writers."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
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
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, timeout=60)
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
