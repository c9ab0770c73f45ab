"""SLURM for real: a one-node cluster on this machine (scripts/slurm_cluster.sh) runs a tiny study through
the workflow's SLURM profile, and a training job stopped by SIGTERM (what SLURM sends before preempting
or at a time limit) is resubmitted by Snakemake and finishes.

Needs root or passwordless sudo (the script installs slurm-wlm and munge with apt-get when missing). Where
that cannot be (not root and no passwordless sudo; SLURM missing and no apt-get; apt-get cannot install
slurm-wlm) the tests are skipped with the reason; a cluster that installs but does not start fails them
with the script's message. Deselect them with ``-m "not slurm"``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_workflow import tiny_params

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "workflow" / "Snakefile"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
SCRIPT = REPO / "scripts" / "slurm_cluster.sh"
BIN = Path(sys.executable).parent

SMALL = {"threads": 1, "mem_mb": 500, "runtime": 10}
# test_workflow's tiny study (params.yaml's affgan and dae, shrunk) with small per-job resources
TINY = tiny_params(
    ["affgan", "dae"],
    evaluate={"n_samples": 4, "references": [], "density": "", "c2st_steps": 10},
    # training asks for a GPU: the test cluster's node has one for SLURM's bookkeeping (no device)
    resources={"prepare": SMALL, "toy": SMALL, "train": {**SMALL, "gpu": 1}, "evaluate": {**SMALL, "gpu": 0}},
)
# the run stopped by SIGTERM: long enough (seconds) to be stopped while it trains, and auxiliary (only the
# figures wait for it), so its second attempt runs beside the evaluations
TINY["methods"]["dae"]["train"] = {"steps": 1000, "log_every": 100, "checkpoint_every": 50}
SLURM_JOBS = {  # SLURM job comment (rule and wildcards, set by the plugin) → jobs; other rules: one job each
    "rule_prepare_wildcards_grass": 1,
    "rule_toy": 1,
    "rule_train_wildcards_grass_affgan": 1,
    "rule_train_wildcards_grass_dae": 2,  # stopped by SIGTERM, then resubmitted (retries: 1)
    "rule_evaluate_wildcards_grass_affgan": 1,
    "rule_evaluate_wildcards_grass_hr": 1,  # the real images: the realism floor
}
# the Snakefile's `localrules`: small steps on finished results run beside Snakemake, not in the queue
LOCAL_RULES = ("aggregate", "claims", "figures", "dataset_figures", "provenance")
STOPPED = "rule_train_wildcards_grass_dae"


def _env(slurm_conf: Path | None = None) -> dict:
    """This environment with the venv first on PATH (sbatch exports it to the jobs, which run `affsr`),
    without the SLURM_* variables of any SLURM job pytest itself may run in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    if slurm_conf:
        env["SLURM_CONF"] = str(slurm_conf)
    return env


def _cluster(command: str, run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), command], capture_output=True, text=True, timeout=300,
                          env={**_env(), "AFFSR_SLURM_DIR": str(run_dir)})


def _cannot_run() -> str:
    """Why a one-node cluster cannot be set up here ("" when it can be tried): the script needs root or
    passwordless sudo, and apt-get where SLURM is not installed."""
    if os.geteuid() != 0 and not (shutil.which("sudo") and subprocess.run(
            ["sudo", "-n", "true"], capture_output=True).returncode == 0):
        return "needs root or passwordless sudo (scripts/slurm_cluster.sh installs and starts SLURM)"
    if not all(shutil.which(c) for c in ("slurmctld", "slurmd", "munged", "sbatch")) and not shutil.which("apt-get"):
        return "SLURM (slurm-wlm, munge) is not installed and there is no apt-get to install it"
    return ""


# scripts/slurm_cluster.sh's errors when the packages cannot be installed (install_packages, and the
# root check): the machine cannot run the test, nothing is wrong with the workflow
INSTALL_FAILED = ("there is no apt-get", "apt-get update failed", "apt-get install", "still missing", "needs root")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running one-node cluster; yields the client environment (SLURM_CONF). Stopped afterwards.
    Skipped where SLURM cannot be installed; fails when it is installed but does not start."""
    reason = _cannot_run()
    if reason:
        pytest.skip(reason)
    run_dir = tmp_path_factory.mktemp("slurm")
    started = _cluster("start", run_dir)
    if started.returncode != 0:
        _cluster("stop", run_dir)
        errors = [line for line in started.stderr.splitlines() if line.startswith("slurm_cluster: error:")]
        if any(text in line for line in errors for text in INSTALL_FAILED):
            pytest.skip(f"SLURM cannot be installed here: {errors[-1]}")
        pytest.fail(f"scripts/slurm_cluster.sh start failed:\n{started.stderr[-3000:]}", pytrace=False)
    conf = re.search(r"^export SLURM_CONF=(\S+)$", started.stdout, re.M)
    assert conf, started.stdout
    pids = {p.name: int(p.read_text()) for p in (run_dir / "pids").iterdir()}
    assert set(pids) == {"munged", "slurmctld", "slurmd"}
    try:
        yield _env(Path(conf.group(1)))
    finally:
        stopped = _cluster("stop", run_dir)
        assert stopped.returncode == 0, stopped.stderr
        assert not any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in pids.values())


def _state(pid: int) -> str:
    try:
        return re.search(r"^State:\s*(\S)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1)
    except (OSError, AttributeError):
        return "gone"


def _squeue(env: dict, *args: str) -> list[list[str]]:
    """squeue rows (job id, state, comment, ...) for the given filters; finished jobs included."""
    out = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i|%T|%k", *args],
                         capture_output=True, text=True, env=env, check=True).stdout
    return [[field.strip() for field in line.split("|")] for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def study(cluster, tmp_path_factory):
    """The tiny study through `--profile workflow/profiles/slurm`. While the dae training runs, its SLURM
    job's steps get SIGTERM (like `sbatch --signal=TERM@...` or a preemption): affsr saves its state and
    exits 75, the job fails, Snakemake resubmits it. Returns (workdir, output, log of the stopped run)."""
    workdir = tmp_path_factory.mktemp("slurm_study")
    (workdir / "params.yaml").write_text(yaml.safe_dump(TINY))
    cmd = [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
           "--profile", str(PROFILE), "--jobs", "4", "--retries", "1",
           # a cluster without slurmdbd or accounts
           "--slurm-status-command", "squeue", "--slurm-no-account",
           # poll often (the profile's 40 s suit a real cluster, not a 2-minute test). After a check that
           # finds no job finished the plugin waits 10 s longer each time: checks 3, 16, 39 s after the
           # last finished job catch this test's ~10 s jobs at the second check
           "--slurm-init-seconds-before-status-checks", "3", "--seconds-between-status-checks", "1",
           "--latency-wait", "5", "--slurm-keep-successful-logs"]
    output = workdir / "snakemake.out"
    resume = workdir / "runs" / "grass" / "dae" / ".resume" / "state.pt"
    stopped_log = ""
    with open(output, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=cluster)
        try:
            deadline = time.monotonic() + 300
            job = None
            while proc.poll() is None and time.monotonic() < deadline:
                rows = [r for r in _squeue(cluster) if r[2] == STOPPED]
                if job is None and resume.exists():  # the training loop runs: it saved once
                    running = [r[0] for r in rows if r[1] == "RUNNING"]
                    if running:
                        job = running[0]
                        subprocess.run(["scancel", "--signal=TERM", job], env=cluster, check=True)
                elif job and not stopped_log and any(r[0] == job and r[1] == "FAILED" for r in rows):
                    # read before the resubmitted job starts and rewrites it
                    stopped_log = (workdir / "results/logs/train/grass/dae.log").read_text()
                time.sleep(0.25)
            if proc.poll() is None:
                proc.kill()
                pytest.fail(f"snakemake still running after 300 s:\n{output.read_text()[-3000:]}")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    text = output.read_text()
    assert proc.returncode == 0, text[-4000:]
    return workdir, text, stopped_log


def test_study_runs_through_slurm(study):
    workdir, _, _ = study
    metrics = pd.read_csv(workdir / "results" / "metrics.csv")
    grass = metrics[metrics.dataset == "grass"]
    assert set(grass.method) == {"affgan", "hr"}
    assert set(grass[grass.method == "affgan"].metric) == {
        "lr_mse", "lr_rel", "lr_psnr", "psnr", "ssim", "swd", "spectrum_distance", "hf_ratio", "c2st", "c2st_se"}
    assert {"affgan", "map"} <= set(metrics[metrics.dataset == "toy"].method)  # the toy trains the study's methods
    value = grass.set_index(["method", "metric"]).value
    assert value["affgan", "lr_mse"] <= 1e-10  # the projection, trained on a SLURM node
    for name in ("metrics.png", "samples_grass.png", "training_grass.png", "toy.png"):
        assert (workdir / "results" / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_every_job_was_a_slurm_job(study, cluster):
    """Each rule's job ran as its own SLURM job (named by the plugin's run id, with the rule in the
    comment), and the plugin kept one SLURM log per job."""
    workdir, text, _ = study
    run_id = re.search(r"SLURM run ID: (\S+)", text).group(1)
    rows = _squeue(cluster, f"--name={run_id}")
    counts = {comment: [c for _, _, c in rows].count(comment) for _, _, comment in rows}
    assert {c: counts.get(c, 0) for c in SLURM_JOBS} == SLURM_JOBS
    assert all(n == 1 for c, n in counts.items() if c not in SLURM_JOBS), counts
    assert not [c for c in counts if any(c == f"rule_{r}" or c.startswith(f"rule_{r}_wildcards") for r in LOCAL_RULES)]
    assert all(f"localrule {r}:" in text for r in LOCAL_RULES), text[-3000:]
    assert [(c, state) for _, state, c in rows if state != "COMPLETED"] == [(STOPPED, "FAILED")]
    logs = (workdir / ".snakemake" / "slurm_logs").rglob("*.log")
    by_job = {p.stem: p.relative_to(workdir / ".snakemake" / "slurm_logs").parts[0] for p in logs}
    assert by_job == {job: "rule_" + re.sub(r"_wildcards_.*", "", comment[5:]) for job, _, comment in rows}


def test_resources_become_sbatch_options(study, cluster):
    """params.yaml `resources:` → sbatch: threads → CPUs, mem_mb → memory, runtime → time limit, and
    `gpu: 1` → --gpus=1 for training only (`gpu: 0` asks for no GPU at all)."""
    workdir, text, _ = study
    run_id = re.search(r"SLURM run ID: (\S+)", text).group(1)
    jobs = {comment: job for job, _, comment in _squeue(cluster, f"--name={run_id}")}

    def show(comment: str) -> str:
        return subprocess.run(["scontrol", "show", "job", jobs[comment]], capture_output=True, text=True,
                              env=cluster, check=True).stdout

    train, evaluate = show("rule_train_wildcards_grass_affgan"), show("rule_evaluate_wildcards_grass_affgan")
    for job in (train, evaluate):
        assert "NumCPUs=1" in job and "MinMemoryNode=500M" in job and "TimeLimit=00:10:00" in job
    assert "gres:gpu:1" in train or "gres/gpu:1" in train, train
    assert "gpu" not in evaluate.lower(), evaluate


def test_stopped_training_is_resubmitted_and_finishes(study, cluster):
    """SIGTERM reached `affsr train` through sbatch → Snakemake → srun → Snakemake → shell; it saved its
    state and exited 75; the job failed; `retries` resubmitted it and the second job finished the run."""
    workdir, _, stopped_log = study
    assert re.search(r"stopped by SIGTERM at step \d+ of 1000; state saved", stopped_log), stopped_log
    states = [state for _, state, comment in sorted(_squeue(cluster), key=lambda r: int(r[0]))
              if comment == STOPPED]
    assert states == ["FAILED", "COMPLETED"]
    assert (workdir / "runs" / "grass" / "dae" / "model.pt").is_file()
    assert not (workdir / "runs" / "grass" / "dae" / ".resume" / "state.pt").exists()
    losses = pd.read_csv(workdir / "results" / "logs" / "train" / "grass" / "dae.csv")
    assert losses.step.max() == 1000
