"""Faults of the operating system end in one `affsr: error:` line naming the user's path and the cause,
exit 2, with no temp file left; Ctrl-C ends in one line and exit 130 (training: the state saved, see
tests/training/test_preemption.py)."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affsr import atomic_files
from affsr.cli import main

BIN = Path(sys.executable).parent


def _noise_png(path: Path, side: int = 256) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side), dtype=np.uint8)).save(path)
    return path


def test_a_file_size_limit_is_one_line_and_leaves_nothing(tmp_path):
    """A real limit (512 bytes, as `ulimit -f` sets it): the LR PNG of 256² noise is larger, the write fails with EFBIG."""
    source = _noise_png(tmp_path / "hr.png")

    def limit():  # in the child only
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    result = subprocess.run([str(BIN / "affsr"), "downsample", str(source), str(tmp_path / "out" / "lr.png"),
                             "--operator", "gaussian"], capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("affsr: error:")
    assert str(tmp_path / "out" / "lr.png") in result.stderr and "file-size limit" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # neither the file, nor a temp file, nor the folder made for them


@pytest.mark.parametrize("code,words", [(errno.EROFS, "read-only file system"),
                                        (errno.ENOSPC, "no space left"), (errno.EACCES, "permission denied")])
def test_an_os_refusal_names_the_users_path_not_the_temp_file(tmp_path, capsys, monkeypatch, code, words):
    source = _noise_png(tmp_path / "hr.png", 64)

    def refuse(src, dst):
        raise OSError(code, os.strerror(code), src)  # as os.replace reports it: the temp file's name

    monkeypatch.setattr(atomic_files.os, "replace", refuse)
    assert main(["downsample", str(source), str(tmp_path / "lr.png"), "--operator", "gaussian"]) == 2
    err = capsys.readouterr().err
    assert err == f"affsr: error: {tmp_path / 'lr.png'}: {words}" + err.split(words, 1)[1]
    assert err.count("\n") == 1 and ".tmp" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["hr.png"]


def test_torch_failing_to_write_on_a_full_disk_says_the_disk_is_full(tmp_path, monkeypatch):
    """torch.save reports a failed write as RuntimeError('… unexpected pos …'): on a full disk that
    becomes ENOSPC with the user's path."""
    monkeypatch.setattr(atomic_files, "_full", lambda folder: True)

    def torch_like(handle):
        handle.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 62400 vs 62296")

    with pytest.raises(OSError) as caught:
        atomic_files.atomic_write(tmp_path / "state.pt", torch_like)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "state.pt")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_outside_training_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    from affsr.upscaling import files

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(files, "read_user_image", interrupted)
    monkeypatch.setattr("affsr.upscaling.verbs.read_user_image", interrupted)
    source = _noise_png(tmp_path / "hr.png", 64)
    assert main(["downsample", str(source), str(tmp_path / "lr.png"), "--operator", "gaussian"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("affsr: interrupted: Ctrl-C") and err.count("\n") == 1
    assert not (tmp_path / "lr.png").exists()


def test_paths_and_counts_that_cannot_work_are_refused_before_any_work(tmp_path, capsys, tiny_params):
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    (tmp_path / "a_file").write_text("not a folder")
    cases = {
        "--threads": (["train", "--params", str(tmp_path / "params.yaml"), "--dataset", "grass", "--method", "mse",
                       "--data", str(tmp_path / "data"), "--checkpoint", str(tmp_path / "run" / "model.pt"),
                       "--log", str(tmp_path / "run" / "losses.csv"), "--threads", "-1"], "--threads: must be a positive"),
        "--resume-dir": (["train", "--params", str(tmp_path / "params.yaml"), "--dataset", "grass", "--method", "mse",
                          "--data", str(tmp_path / "data"), "--checkpoint", str(tmp_path / "run" / "model.pt"),
                          "--log", str(tmp_path / "run" / "losses.csv"), "--resume-dir", str(tmp_path / "a_file")],
                         f"{tmp_path / 'a_file'}: --resume-dir is a file"),
        "--out": (["prepare", "--params", str(tmp_path / "params.yaml"), "--dataset", "grass",
                   "--out", str(tmp_path / "a_file")], f"{tmp_path / 'a_file'}: --out is a file"),
    }
    for option, (argv, words) in cases.items():
        assert main(argv) == 2, option
        err = capsys.readouterr().err
        assert err.startswith("affsr: error:") and err.count("\n") == 1 and words in err, (option, err)
    assert (tmp_path / "a_file").read_text() == "not a folder" and not (tmp_path / "run").exists()
