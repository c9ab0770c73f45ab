"""One training job per run (issue 25): while `affsr train` uses a run folder it holds a lock in the run's
`.resume/`; a second `affsr train` on it stops at once with one line naming the holder (pid, host, since
when), exit 2, touching nothing; a lock left by a killed job does not block (the kernel releases flock)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from affsr.cli import main
from affsr.training.lock import LOCK_NAME, RunInUse, run_lock

BIN = Path(sys.executable).parent


def _holder(resume: Path) -> subprocess.Popen:
    """Another process holding the run's lock (until killed); returns once it holds it."""
    script = ("import sys, time\n"
              "from pathlib import Path\n"
              "from affsr.training.lock import run_lock\n"
              "with run_lock(Path(sys.argv[1])):\n"
              "    print('locked', flush=True)\n"
              "    time.sleep(120)\n")
    process = subprocess.Popen([sys.executable, "-c", script, str(resume)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "locked\n"
    return process


@pytest.fixture
def params(tmp_path, tiny_params) -> Path:
    tiny_params["train"].update(steps=4, checkpoint_every=2, log_every=2)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params))
    return path


def _train(params: Path, data: Path, run: Path) -> list[str]:
    return ["train", "--quiet", "--params", str(params), "--dataset", "grass", "--method", "mse", "--data", str(data),
            "--checkpoint", str(run / "model.pt"), "--log", str(run / "losses.csv")]


def test_a_second_train_on_a_locked_run_names_the_holder_and_touches_nothing(tmp_path, params, tiny_data, capsys):
    run = tmp_path / "run"
    holder = _holder(run / ".resume")
    try:
        before = sorted(p.relative_to(run) for p in run.rglob("*"))
        code = main(_train(params, tiny_data, run))
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and err.startswith("affsr: error: ") and "Traceback" not in err
        assert f"{run / '.resume'}: this run is being trained by another job" in err
        assert f"pid {holder.pid} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d')}" in err
        assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # the holder's lock file, nothing else
        assert json.loads((run / ".resume" / LOCK_NAME).read_text())["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_job_does_not_block(tmp_path, params, tiny_data, capsys):
    run = tmp_path / "run"
    holder = _holder(run / ".resume")
    holder.send_signal(signal.SIGKILL)  # no cleanup runs: the lock file stays, the kernel drops the lock
    holder.wait()
    assert (run / ".resume" / LOCK_NAME).exists()
    code = main(_train(params, tiny_data, run))
    assert code == 0, capsys.readouterr().err
    # Finished: model and log only (Snakemake's outputs); the lock file went with the job, .resume holds nothing.
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()) == ["losses.csv", "model.pt"]


def test_the_lock_is_held_exactly_while_the_block_runs(tmp_path):
    resume = tmp_path / ".resume"
    with run_lock(resume):
        with pytest.raises(RunInUse, match="another job"), run_lock(resume):  # another open file conflicts too
            pass
        record = json.loads((resume / LOCK_NAME).read_text())
        assert set(record) == {"pid", "host", "since"}
    assert not resume.exists()  # made for the lock, removed with it
    with run_lock(resume):
        pass


def test_two_real_train_jobs_on_one_run(tmp_path, tiny_params):
    """The case measured in issue 25: two `affsr train` with the same settings on one run folder both trained.
    Now the second exits 2 at once naming the first; killing the first (kill -9) frees the run."""
    tiny_params["train"].update(steps=100_000, checkpoint_every=100_000)  # the first job runs until killed
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    subprocess.run([str(BIN / "affsr"), "prepare", "--params", str(tmp_path / "params.yaml"), "--dataset", "grass",
                    "--out", str(tmp_path / "data")], check=True, capture_output=True)
    run = tmp_path / "run"
    argv = [str(BIN / "affsr"), *_train(tmp_path / "params.yaml", tmp_path / "data", run)]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = run / ".resume" / LOCK_NAME
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text()):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.poll() else "slow"
            time.sleep(0.05)
        second = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert f"pid {first.pid} on {socket.gethostname()}" in second.stderr
        assert first.poll() is None  # the first job trains on, undisturbed
    finally:
        first.kill()
        first.wait()
    assert not (run / "model.pt").exists()
    with run_lock(run / ".resume"):  # the killed job's lock is gone with it
        pass
