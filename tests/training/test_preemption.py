"""Preemption and kills lose nothing: real `affsr train` processes stopped by SIGTERM / SIGUSR1 (what
SLURM sends before it preempts a job) or killed outright with SIGKILL, then rerun, end with exactly the
weights and loss log of an uninterrupted run.

Why bitwise: the resume state holds everything later steps depend on (weights, Adam moments, the torch
and batch-sampler RNG states, the step counter, the loss log and the loss sums since the last log row),
and a CPU run with a fixed thread count is deterministic, so nothing justifies a tolerance.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from affsr.training import checkpoint

BIN = Path(sys.executable).parent
STEPS = 600


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A params file for a GAN run long enough to be interrupted (seconds), and its prepared data."""
    from conftest import tiny_params_dict

    root = tmp_path_factory.mktemp("preempt")
    params = tiny_params_dict()
    params["train"].update(steps=STEPS, log_every=7, checkpoint_every=40)  # rows and saves not aligned
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([str(BIN / "affsr"), "prepare", "--params", str(root / "params.yaml"), "--dataset", "grass",
                    "--out", str(root / "data")], check=True, capture_output=True)
    return root


def _train(root: Path, run: str) -> subprocess.Popen:
    out = root / run
    return subprocess.Popen(
        [str(BIN / "affsr"), "train", "--quiet", "--threads", "1", "--params", str(root / "params.yaml"),
         "--dataset", "grass", "--method", "affgan", "--data", str(root / "data"),
         "--checkpoint", str(out / "model.pt"), "--log", str(out / "losses.csv")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_resume_state(process: subprocess.Popen, state: Path, min_step: int) -> int:
    """Block until the periodic resume state exists with at least ``min_step`` steps; return its step."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, f"training ended before it could be interrupted: {process.stderr.read()}"
        if state.exists():
            try:
                step = int(checkpoint.load(state)[0]["step"])
            except checkpoint.CheckpointError:  # being replaced right now
                step = -1
            if step >= min_step:
                return step
        time.sleep(0.02)
    raise AssertionError("no resume state appeared within 120 s")


@pytest.fixture(scope="module")
def reference(setup):
    process = _train(setup, "reference")
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return setup / "reference"


def _assert_same_run(run: Path, reference: Path) -> None:
    got, _ = checkpoint.load(run / "model.pt")
    want, _ = checkpoint.load(reference / "model.pt")
    for net, weights in want["networks"].items():
        for key, value in weights.items():
            assert torch.equal(got["networks"][net][key], value), f"{net}.{key} differs"
    columns = lambda frame: frame.drop(columns=["seconds"])  # noqa: E731 — wall time differs, nothing else may
    pd.testing.assert_frame_equal(columns(pd.read_csv(run / "losses.csv")),
                                  columns(pd.read_csv(reference / "losses.csv")))
    assert not (run / ".resume" / "state.pt").exists()


def test_sigkill_mid_run_then_rerun_matches_uninterrupted_run(setup, reference):
    process = _train(setup, "killed")
    step = _wait_for_resume_state(process, setup / "killed" / ".resume" / "state.pt", 80)
    process.kill()  # SIGKILL: no handler runs, only the periodic state survives
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL and step < STEPS
    assert not (setup / "killed" / "model.pt").exists()  # no half-written output
    # (a kill during a state write may leave its temp file in .resume/: the rerun removes it)

    rerun = _train(setup, "killed")
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    _assert_same_run(setup / "killed", reference)
    assert not list((setup / "killed").rglob("*.tmp"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT])
def test_stop_signal_saves_state_exits_75_and_rerun_resumes(setup, reference, sig):
    """A scheduler's signal exits 75 (EX_TEMPFAIL: retry); Ctrl-C (SIGINT) exits 130 — both save the state."""
    run = f"stopped_{sig.name}"
    state = setup / run / ".resume" / "state.pt"
    process = _train(setup, run)
    periodic = _wait_for_resume_state(process, state, 40)
    sent = time.monotonic()
    process.send_signal(sig)
    _, err = process.communicate(timeout=30)
    took = time.monotonic() - sent
    assert process.returncode == (130 if sig == signal.SIGINT else 75), err  # 75 = EX_TEMPFAIL: a scheduler may retry
    assert took < 30
    line = err.strip().splitlines()[-1]
    assert line.startswith("affsr: interrupted:") and sig.name in line and str(state) in line
    assert "Traceback" not in err
    saved = int(checkpoint.load(state)[0]["step"])
    assert periodic <= saved < STEPS  # saved on the signal, not only at the last periodic save
    assert not (setup / run / "model.pt").exists()

    rerun = _train(setup, run)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    _assert_same_run(setup / run, reference)
