"""Fault injection (issue 25): the real CLI under the faults a user meets — a full disk, a read-only place,
a signal at a random moment, two jobs at once, corrupt input files — each case asserting what the issue
promises: the exit code (2 for a user's or the OS's fault, 130 for Ctrl-C), stderr exactly one ``affsr:``
line naming the user's path and no traceback, and the files under the output folder afterwards — byte for
byte as before, or the complete new set; no temp file (``*.tmp``) or work folder (``*.work``) once the
process is gone and (where the design leaves a killed job's leftovers to the next run) rerun.

Where a signal or a process boundary matters the CLI runs as ``python -m affsr``; elsewhere in-process
(``affsr.cli.main``). The full disk is real: a small tmpfs mounted here (as root), or where mounting is not
allowed a file-size limit (``ulimit -f``) on a subprocess; the test ids say which. The read-only place is
real too (tests/read_only.py). What other modules already cover is not repeated: the read-only place of a
single option and failures at the very end (test_all_or_nothing), two trains on one run path
(training/test_lock), bitwise resume after SIGTERM / SIGUSR1 / SIGINT / SIGKILL once a state was saved
(training/test_preemption), corrupt training splits (test_errors).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from read_only import read_only

from affsr.cli import main
from affsr.training import checkpoint

ERROR = "affsr: error: "
INTERRUPTED = "affsr: interrupted: "
STEPS = 200  # a training run of a few seconds: long enough to be hit at a random point


# ---- running the CLI -----------------------------------------------------------------------------------


def _cli(*argv) -> tuple[int, str]:
    """``affsr ARGV`` in this process: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


#: ``python -c`` code running ``affsr`` under a file-size limit (``sys.argv[1]`` bytes), as ``ulimit -f`` sets
#: it: set in the child itself, not through ``preexec_fn`` (unsafe in a parent with threads, as torch's).
_LIMITED = ("import resource, runpy, sys; n = int(sys.argv.pop(1)); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); runpy.run_module('affsr', run_name='__main__')")


def _affsr(*argv, limit_bytes: int | None = None) -> subprocess.Popen:
    """``python -m affsr ARGV`` as a process of its own (one torch thread: the test machine has two cores),
    optionally under a file-size limit of ``limit_bytes``."""
    command = ["-m", "affsr"] if limit_bytes is None else ["-c", _LIMITED, str(limit_bytes)]
    return subprocess.Popen([sys.executable, *command, *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    """Wait for ``process``: (exit code, stdout, stderr); a negative code is the signal that killed it."""
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def _wait_for(process: subprocess.Popen, ready, what: str) -> None:
    """Block until ``ready()`` (polled every 10 ms) while ``process`` runs; fail if it ends first."""
    deadline = time.monotonic() + 120
    while not ready():
        assert process.poll() is None, f"the command ended before {what}: {process.stderr.read()}"
        assert time.monotonic() < deadline, f"no {what} within 120 s"
        time.sleep(0.01)


# ---- what a test asserts -------------------------------------------------------------------------------


def _one_line(code: int, err: str, *fragments: str, exit_code: int = 2, prefix: str = ERROR) -> str:
    """The exit code is ``exit_code`` and stderr is one line starting with ``prefix`` holding every fragment,
    no traceback; the line is returned. (A progress bar redraws itself with ``\\r`` and is cleared when
    its step ends: what a terminal shows is the text after the last ``\\r``.)"""
    assert "Traceback" not in err, err
    assert code == exit_code, err
    shown = err.split("\r")[-1]
    assert shown.count("\n") == 1 and shown.endswith("\n") and shown.startswith(prefix), repr(err)
    for fragment in fragments:
        assert fragment in shown, (fragment, shown)
    return shown


def _named_path(line: str) -> Path:
    """The path an ``affsr: error: PATH: cause`` line names."""
    return Path(line[len(ERROR):].split(": ")[0])


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder``, hidden ones too, by relative path: a file's SHA-256, "folder"
    for a folder ({} when ``folder`` does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): "folder" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def _write_previous(folder: Path, names: list[str]) -> None:
    """Outputs of an earlier run (their content is never read: only whether they change)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(f"the previous {name}\n".encode())


# ---- inputs --------------------------------------------------------------------------------------------


def _grey_png(path: Path, side: int) -> Path:
    """A crop of skimage's camera: a photo, so the projection of `upscale` has work to do."""
    import skimage.data

    Image.fromarray(skimage.data.camera()[100:100 + side, 200:200 + side]).save(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_data, affmse_checkpoint) -> SimpleNamespace:
    """Inputs shared by the cases: images, params files, the tiny data and a trained checkpoint."""
    from conftest import tiny_params_dict

    root = tmp_path_factory.mktemp("fault_inputs")

    def params(name: str, change) -> Path:
        p = tiny_params_dict()
        p["train"].update(steps=STEPS, log_every=20, checkpoint_every=50)
        change(p)
        (root / name).write_text(yaml.safe_dump(p))
        return root / name

    big_hr = root / "big_hr.png"  # colour noise whose LR as float32 .npy (350² × 3 × 4 bytes, 1.5 MB) fills a disk
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1400, 1400, 3), dtype=np.uint8)).save(big_hr)
    return SimpleNamespace(
        lr=_grey_png(root / "lr.png", 96),  # upscales in ~1 s once torch is loaded
        hr=_grey_png(root / "hr.png", 96),
        big_hr=big_hr,
        checkpoint=affmse_checkpoint,
        data=tiny_data,
        params=params("params.yaml", lambda p: None),
        # a generator whose resume state (weights and Adam's moments, 1.1 MB) fills what the disk has left
        wide=params("wide.yaml", lambda p: (p["generator"].update(width=32, blocks=1),
                                            p["train"].update(steps=2, checkpoint_every=1))),
        # a data set whose train.npz (1.3 MB) does not fit either
        big_data=params("big_data.yaml", lambda p: p["datasets"]["grass"].update(hr_size=64, n_train=300)),
    )


#: What each verb writes: every name lands directly in the output folder (so a read-only place made with
#: ``chattr +i``, which covers one folder, covers all of them).
OUTPUTS = {
    "upscale": ["sr.png", "sr.npy"],
    "downsample": ["lr.png", "lr.npy"],
    "train": ["model.pt", "losses.csv"],
    "evaluate": ["metrics.csv", "samples.npz"],
    "prepare": ["train.npz", "val.npz", "test.npz", "manifest.json"],
}


def _argv(verb: str, out: Path, inputs: SimpleNamespace, big: bool = False) -> list:
    """The command line of ``verb`` writing its OUTPUTS into ``out``; ``big``: with the inputs whose outputs
    fill what a disk has left beyond the 1 MiB checked before the work (not for upscale and evaluate)."""
    return {
        "upscale": ["upscale", inputs.lr, out / "sr.png", "--checkpoint", inputs.checkpoint, "--raw", out / "sr.npy"],
        "downsample": ["downsample", inputs.big_hr if big else inputs.hr, out / "lr.png", "--operator", "gaussian",
                       "--raw", out / "lr.npy"],
        "train": ["train", "--quiet", "--params", inputs.wide if big else inputs.params, "--dataset", "grass",
                  "--method", "mse", "--data", inputs.data, "--checkpoint", out / "model.pt", "--log", out / "losses.csv"],
        "evaluate": ["evaluate", "--data", inputs.data, "--method", "bicubic", "--out", out / "metrics.csv",
                     "--samples", out / "samples.npz", "--c2st-steps", "2", "--n-samples", "2"],
        "prepare": ["prepare", "--quiet", "--params", inputs.big_data if big else inputs.params, "--dataset", "grass",
                    "--out", out],
    }[verb]


def _complete(verb: str, out: Path, inputs: SimpleNamespace) -> None:
    """The outputs of ``verb`` in ``out`` are whole and right: upscale's PNG decodes at 4× the input's size
    and downsamples (with the run's A, rounded to 8 bits) back to the input exactly, its --raw is finite;
    train's checkpoint loads and its log reaches the last step."""
    if verb == "upscale":
        lr = np.asarray(Image.open(inputs.lr))
        with Image.open(out / "sr.png") as sr:
            sr.load()
            assert sr.size == (4 * lr.shape[1], 4 * lr.shape[0]) and sr.mode == "L"
        raw = np.load(out / "sr.npy")
        assert raw.shape == (1, 4 * lr.shape[0], 4 * lr.shape[1]) and np.isfinite(raw).all()
        with tempfile.TemporaryDirectory() as scratch:
            code, err = _cli("downsample", out / "sr.png", Path(scratch) / "x.png", "--checkpoint", inputs.checkpoint)
            assert code == 0, err
            assert np.array_equal(np.asarray(Image.open(Path(scratch) / "x.png")), lr)  # the round trip
    elif verb == "train":
        state, _ = checkpoint.load(out / "model.pt")
        assert "generator" in state["networks"]
        assert pd.read_csv(out / "losses.csv")["step"].iloc[-1] == STEPS
    else:
        raise AssertionError(f"no completeness check for {verb}")


# ---- 1. a full disk ------------------------------------------------------------------------------------

#: The two ways a disk is full: so full that the check before the work refuses (tmpfs of 256 kB: below
#: the 1 MiB every verb asks for), or roomy enough for that check and filled by the outputs themselves
#: (1200 kB). Under `ulimit -f` the same two: a limit every output exceeds (512 bytes), and one that only
#: the large outputs exceed (100 kB).
TMPFS_SIZE = {"nearly-full": "256k", "fills-up": "1200k"}
FILE_SIZE_LIMIT = {"nearly-full": 512, "fills-up": 100_000}


def _can_mount_tmpfs() -> bool:
    """May this process mount a tmpfs (root, and a kernel and container that allow it)?"""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = Path(tempfile.mkdtemp())
    try:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                          capture_output=True, check=False).returncode != 0:
            return False
        subprocess.run(["umount", str(probe)], capture_output=True, check=True)
        return True
    finally:
        probe.rmdir()


FULL_DISK = "tmpfs" if _can_mount_tmpfs() else "ulimit-f" if hasattr(resource, "RLIMIT_FSIZE") else None


@pytest.fixture
def full_disk(tmp_path):
    """``full_disk(fill)`` → (folder, run): an empty folder on a full disk and ``run(*argv)`` → (code, stderr)
    running the CLI against it — in-process on a tmpfs mounted there (unmounted afterwards), or as a
    subprocess under a file-size limit where mounting is not allowed."""
    if FULL_DISK is None:
        pytest.skip("neither a tmpfs nor a file-size limit can be set up here")
    mounted = []

    def make(fill: str):
        folder = tmp_path / "disk"
        folder.mkdir()
        if FULL_DISK == "tmpfs":
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE[fill]}", "tmpfs", str(folder)],
                           capture_output=True, check=True)
            mounted.append(folder)
            return folder, _cli
        return folder, lambda *argv: _finish(_affsr(*argv, limit_bytes=FILE_SIZE_LIMIT[fill]))[::2]

    yield make
    for folder in mounted:
        if subprocess.run(["umount", str(folder)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


FULL_CASES = [(verb, "nearly-full") for verb in OUTPUTS] + [
    ("upscale", "fills-up"),  # tmpfs: its work files do not fit, refused before the work ("GB free")
    ("downsample", "fills-up"),  # the 1.5 MB --raw fails part-way, after the PNG was written
    ("train", "fills-up"),  # the first resume state fails part-way, after a training step
    ("prepare", "fills-up"),  # train.npz fails part-way
]  # evaluate writes a few kB with the tiny data: it cannot fill a disk that passed the check


@pytest.mark.parametrize("verb,fill", FULL_CASES, ids=[f"{verb}-{fill}-{FULL_DISK}" for verb, fill in FULL_CASES])
def test_a_full_disk_is_one_line_and_leaves_the_outputs_as_they_were(full_disk, inputs, verb, fill):
    """Refused before the work, or failing part-way: one line naming the output, the earlier one intact."""
    disk, run = full_disk(fill)
    _write_previous(disk, OUTPUTS[verb][:1])  # an earlier result, which must survive
    before = _snapshot(disk)
    code, err = run(*_argv(verb, disk, inputs, big=fill == "fills-up"))
    cause = ("file-size limit" if FULL_DISK == "ulimit-f" else
             "GB free" if (verb, fill) == ("upscale", "fills-up") else "no space left")
    line = _one_line(code, err, cause)
    # the user's path: one of the verb's outputs, or the resume state beside train's checkpoint
    assert _named_path(line) in {disk / name for name in OUTPUTS[verb]} | {disk / ".resume" / "state.pt"}, line
    assert " 0.00 GB" not in line  # a small disk's sizes said "needs 0.00 GB free (0.00 GB free)"
    assert _snapshot(disk) == before


def test_an_array_cut_short_by_the_file_size_limit_is_refused_not_saved(tmp_path):
    """`downsample --raw` under `ulimit -f` where the PNG fits and the .npy does not: numpy's C writer lost
    the error, and the cut .npy was renamed into place with exit 0 (fixed in atomic_files.write_npy)."""
    flat = tmp_path / "flat.png"
    Image.new("L", (96, 96), 128).save(flat)  # its 24² LR PNG is a few dozen bytes, the .npy 2.4 kB
    out = tmp_path / "out"
    code, _, err = _finish(_affsr("downsample", flat, out / "lr.png", "--operator", "gaussian",
                                  "--raw", out / "lr.npy", limit_bytes=1024))
    _one_line(code, err, f"{out / 'lr.npy'}: file too large", "file-size limit")
    assert not out.exists()


# ---- 2. a read-only place ------------------------------------------------------------------------------

#: The step each verb must not reach when its outputs cannot be written: (module, attribute).
WORK = {
    "upscale": ("affsr.training.checkpoint", "load_model"),
    "downsample": ("affsr.upscaling.verbs", "downsample_file"),
    "train": ("affsr.training.run", "fit"),
    "evaluate": ("affsr.evaluation.evaluate", "evaluate"),
    "prepare": ("affsr.data.prepare", "prepare"),
}


@pytest.mark.parametrize("verb", list(OUTPUTS))
def test_a_read_only_place_is_refused_before_the_work_and_nothing_is_written(tmp_path, inputs, monkeypatch, verb):
    """The output folder (holding an earlier result) is read-only: refused in one line before the verb's work."""
    import importlib

    def work(*args, **kwargs):
        raise AssertionError(f"{verb} started its work although its outputs cannot be written")

    module, name = WORK[verb]
    monkeypatch.setattr(importlib.import_module(module), name, work)
    out = tmp_path / "out"
    _write_previous(out, OUTPUTS[verb][:1])
    before = _snapshot(out)
    with read_only(out):
        code, err = _cli(*_argv(verb, out, inputs))
        after = _snapshot(out)
    line = _one_line(code, err)
    assert _named_path(line) in {out / name for name in OUTPUTS[verb]}, line
    assert after == before


# ---- 3. a signal at a random point ---------------------------------------------------------------------

#: When a command has started its work, seen from outside: upscale's work folder beside the output exists,
#: train holds its run's lock. (Not earlier: Ctrl-C while Python imports ``affsr.cli``, the first ~0.4 s,
#: ends in Python's own KeyboardInterrupt traceback, before any affsr code can handle it.)
WORKING = {"upscale": lambda out: any(out.glob(".sr.png.*.work")), "train": lambda out: (out / ".resume" / "lock").exists()}
#: How long after that a signal may come (s): within the work, which takes ~0.5 s (upscale of 96² → 384²)
#: and ~1 s (train, 200 steps, then its outputs) on an idle 2-core machine, longer on a busy one; then
#: Python's teardown takes ~0.4 s more.
WINDOW = {"upscale": 0.7, "train": 1.0}
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGINT)


def _signal_cases(seed: int = 25) -> list[tuple[str, signal.Signals, float]]:
    """(verb, signal, delay): per verb, one random moment in each quarter of its window, the quarters dealt
    to the signals at random (seeded: the same moments on every run, spread from start to end)."""
    rng, cases = random.Random(seed), []
    for verb, window in WINDOW.items():
        quarters = rng.sample(range(len(SIGNALS)), len(SIGNALS))
        cases += [(verb, sig, round((q + rng.random()) * window / len(SIGNALS), 2)) for sig, q in zip(SIGNALS, quarters)]
    return cases


SIGNAL_CASES = _signal_cases()


def _ending(verb: str, sig: signal.Signals, code: int, out: str, err: str) -> str:
    """How a signalled command ended, asserting its exit code and stderr: "finished", "stopped" (by its
    own handling: no file of its own is left but a saved resume state) or "killed" (no handler ran: a
    killed writer's temp files and work folder may be left for the next run to remove).

    SIGINT (Ctrl-C) → 130 and one ``affsr: interrupted:`` line. SIGTERM → 75 with one line (EX_TEMPFAIL: a
    scheduler may retry): training saves its state; outside the training loop (upscale, or train while
    loading or writing) the verb's cleanup runs (affsr.cli's handler), leaving no temp file or work
    folder. SIGKILL → dies.
    A command that printed its summary had finished: a signal during Python's teardown after ``main``
    returned (its handlers are reset to the default then) kills it without a word, outputs complete."""
    if code == 0 or (code == -sig and out.strip() and not err.strip()):
        return "finished"
    if sig == signal.SIGINT:
        _one_line(code, err, exit_code=130, prefix=INTERRUPTED)
        return "stopped"
    if sig == signal.SIGTERM:  # training saves its state; any other verb drops its temp files and work folder
        _one_line(code, err, "SIGTERM", exit_code=75, prefix=INTERRUPTED)
        return "stopped"
    assert code == -sig and not out and "Traceback" not in err, (code, out, err)
    return "killed"


@pytest.mark.parametrize("verb,sig,delay", SIGNAL_CASES,
                         ids=[f"{verb}-{sig.name}-after-{delay}s" for verb, sig, delay in SIGNAL_CASES])
def test_a_signal_at_a_random_point_leaves_old_or_complete_outputs_and_a_rerun_succeeds(tmp_path, inputs, verb,
                                                                                       sig, delay):
    """After the signal the outputs are the earlier ones or all new and whole; only a killed job's temp files
    and work folder (and training's resume state) are left; the same command then succeeds and leaves
    exactly its outputs."""
    out = tmp_path / "out"
    argv = _argv(verb, out, inputs)
    _write_previous(out, OUTPUTS[verb])
    before = _snapshot(out)
    process = _affsr(*argv)
    _wait_for(process, lambda: WORKING[verb](out), "its work started")
    time.sleep(delay)
    process.send_signal(sig)
    ending = _ending(verb, sig, *_finish(process))

    after = _snapshot(out)
    outputs = {name: after.get(name) for name in OUTPUTS[verb]}
    if ending == "finished" or outputs != {name: before[name] for name in OUTPUTS[verb]}:  # then all new, whole
        assert all(outputs[name] not in (None, before[name]) for name in OUTPUTS[verb]), (ending, outputs)
        _complete(verb, out, inputs)
    for name in set(after) - set(OUTPUTS[verb]):
        top = name.split("/")[0]
        resume_state = verb == "train" and top == ".resume"  # kept outside the outputs by design
        dead_writers = ending == "killed" and re.match(rf"^\.[^/]+\.{process.pid}[.@]", top)  # temp files, work folder
        assert resume_state or dead_writers, (name, ending)

    code, err = _cli(*argv)  # the same command again: finishes (resuming training) and removes leftovers
    assert code == 0, err
    left = _snapshot(out)
    assert sorted(name for name, kind in left.items() if kind != "folder") == sorted(OUTPUTS[verb]), left
    assert {name for name, kind in left.items() if kind == "folder"} <= {".resume"}, left  # emptied, as by design
    _complete(verb, out, inputs)


# ---- 4. two jobs at once -------------------------------------------------------------------------------


def test_two_upscales_to_the_same_output_leave_one_complete_set(tmp_path, inputs):
    """Both finish (or one fails in one line); what is left is one whole image and its --raw, nothing else:
    each job has its own temp files and work folder, and neither removes the other's (its pid is alive)."""
    out = tmp_path / "out"
    argv = _argv("upscale", out, inputs)
    jobs = [_affsr(*argv) for _ in range(2)]
    endings = [_finish(job)[::2] for job in jobs]
    for code, err in endings:
        if code:
            _one_line(code, err)
    assert any(code == 0 for code, _ in endings), endings
    assert sorted(_snapshot(out)) == sorted(OUTPUTS["upscale"])
    _complete("upscale", out, inputs)


def test_a_second_train_on_the_same_run_by_another_path_is_refused_naming_the_first(tmp_path, inputs):
    """The run folder reached through a symbolic link, with --resume-dir given explicitly: the lock is on the
    file, not on how its path is spelled (test_lock covers the same path twice)."""
    tiny = yaml.safe_load(inputs.params.read_text())
    tiny["train"].update(steps=100_000, checkpoint_every=100_000)  # runs until killed
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(tiny))
    run, alias = tmp_path / "run", tmp_path / "alias"
    run.mkdir()
    alias.symlink_to(run, target_is_directory=True)
    first = _affsr("train", "--quiet", "--params", tmp_path / "long.yaml", "--dataset", "grass", "--method", "mse",
                   "--data", inputs.data, "--checkpoint", run / "model.pt", "--log", run / "losses.csv")
    try:
        lock = run / ".resume" / "lock"
        _wait_for(first, lambda: lock.exists() and lock.read_text(), "the first job held the run's lock")
        before = _snapshot(run)
        code, err = _cli("train", "--quiet", "--params", tmp_path / "long.yaml", "--dataset", "grass", "--method",
                         "mse", "--data", inputs.data, "--checkpoint", alias / "model.pt", "--log",
                         alias / "losses.csv", "--resume-dir", alias / ".resume")
        _one_line(code, err, str(alias / ".resume"), "being trained by another job", f"pid {first.pid}")
        assert _snapshot(run) == before and first.poll() is None  # untouched; the first trains on
    finally:
        first.kill()
        first.wait()


# ---- 5. corrupt input files ----------------------------------------------------------------------------


def _cut(path: Path, keep: float = 0.5) -> Path:
    """``path`` cut to its first ``keep`` part (a copy interrupted, a download cut short)."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def _copy(source: Path, target: Path) -> Path:
    """A copy of a file or a folder: the shared inputs stay intact."""
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
    return target


# Each case: (d, i) = (the test's folder, the inputs) → (argv, the corrupt file, words its line must hold);
# outputs go to d/out.


def _corrupt_png_truncated(d, i):
    bad = _cut(_copy(i.lr, d / "lr.png"))
    return ["upscale", bad, d / "out" / "sr.png", "--checkpoint", i.checkpoint], bad, "corrupt or truncated"


def _corrupt_png_garbage(d, i):
    bad = d / "lr.png"
    bad.write_bytes(i.lr.read_bytes()[:33] + b"garbage\x00" * 64)  # signature and header intact, then noise
    return ["upscale", bad, d / "out" / "sr.png", "--checkpoint", i.checkpoint], bad, "not an image file"


def _corrupt_npy_truncated(d, i):
    bad = d / "lr.npy"
    np.save(bad, np.asarray(Image.open(i.lr), dtype=np.float32) / 255)
    return ["upscale", _cut(bad), d / "out" / "sr.png", "--checkpoint", i.checkpoint], bad, "not a NumPy array"


def _corrupt_hr_png_truncated(d, i):
    bad = _cut(_copy(i.hr, d / "hr.png"))
    return ["downsample", bad, d / "out" / "lr.png", "--operator", "gaussian"], bad, "corrupt or truncated"


def _corrupt_checkpoint_upscale(d, i):
    bad = _cut(_copy(i.checkpoint, d / "model.pt"))
    return ["upscale", i.lr, d / "out" / "sr.png", "--checkpoint", bad], bad, "not a readable affsr checkpoint"


def _corrupt_checkpoint_evaluate(d, i):
    bad = _cut(_copy(i.checkpoint, d / "model.pt"))
    return (["evaluate", "--data", i.data, "--method", "affmse", "--checkpoint", bad, "--out", d / "out" / "m.csv",
             "--c2st-steps", "2"], bad, "not a readable affsr checkpoint")


def _corrupt_params_tab(d, i):
    bad = d / "params.yaml"
    bad.write_text(i.params.read_text().replace("\n  steps:", "\n\tsteps:"))
    return (["train", "--quiet", "--params", bad, "--dataset", "grass", "--method", "mse", "--data", i.data,
             "--checkpoint", d / "out" / "model.pt", "--log", d / "out" / "losses.csv"], bad, "not valid YAML (line")


def _corrupt_params_unclosed(d, i):
    bad = d / "params.yaml"
    bad.write_text(i.params.read_text() + "extra: [1, 2\n")
    return ["prepare", "--params", bad, "--dataset", "grass", "--out", d / "out"], bad, "not valid YAML (line"


def _corrupt_test_split(d, i):
    data = _copy(i.data, d / "data")
    bad = _cut(data / "test.npz")
    return (["evaluate", "--data", data, "--method", "bicubic", "--out", d / "out" / "m.csv", "--samples",
             d / "out" / "s.npz", "--c2st-steps", "2"], bad, "corrupt")


def _corrupt_resume_state(d, i):
    """A run's resume state cut short (a disk that lost its tail): refused, kept for the user to look at."""
    bad = d / "out" / ".resume" / "state.pt"
    bad.parent.mkdir(parents=True)
    _cut(_copy(i.checkpoint, bad))
    return (["train", "--quiet", "--params", i.params, "--dataset", "grass", "--method", "mse", "--data", i.data,
             "--checkpoint", d / "out" / "model.pt", "--log", d / "out" / "losses.csv"], bad,
            "resume state: delete it")


CORRUPT = {
    "upscale-truncated-png": _corrupt_png_truncated,
    "upscale-png-garbage-after-header": _corrupt_png_garbage,
    "upscale-truncated-npy": _corrupt_npy_truncated,
    "downsample-truncated-png": _corrupt_hr_png_truncated,
    "upscale-checkpoint-cut-at-half": _corrupt_checkpoint_upscale,
    "evaluate-checkpoint-cut-at-half": _corrupt_checkpoint_evaluate,
    "train-params-with-a-tab": _corrupt_params_tab,
    "prepare-params-unclosed-bracket": _corrupt_params_unclosed,
    "evaluate-truncated-test-split": _corrupt_test_split,
    "train-truncated-resume-state": _corrupt_resume_state,
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_a_corrupt_input_file_is_one_line_naming_it_and_nothing_is_written(tmp_path, inputs, case):
    argv, bad, words = CORRUPT[case](tmp_path, inputs)
    before = _snapshot(tmp_path / "out")
    code, err = _cli(*argv)
    _one_line(code, err, str(bad), words)
    assert _snapshot(tmp_path / "out") == before  # absent, or (the resume state) as it was
