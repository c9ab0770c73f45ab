"""The real Snakemake workflow on a tiny config in a temp directory, its lint, and DVC's view of it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
BIN = Path(sys.executable).parent

TINY = {
    "study": "demo",
    "paper": {"train": {"steps": 8}},  # DVC tracks these keys: present in every params file
    "seed": 0,
    "operator": {"kind": "gaussian", "sigma": 1.0, "size": 9, "scale": 4},
    "datasets": {"grass": {"source": "skimage_grass", "hr_size": 16, "n_train": 64, "n_val": 8,
                           "n_test": 8}},
    "generator": {"width": 8, "blocks": 1},
    "discriminator": {"widths": [8, 16]},
    "denoiser": {"width": 8, "depth": 2},  # every section DVC lists as params must be present
    "density": {"width": 8, "layers": 2, "kernel": 3, "first_kernel": 3, "components": 2, "features": 2},
    "train": {"steps": 6, "batch_size": 8, "log_every": 2, "checkpoint_every": 3},
    "methods": {
        "mse": {"objective": "pixel", "constraint": "none", "options": {"loss": "l2"}},
        "affgan": {"objective": "gan", "constraint": "projected"},
        "dae": {"objective": "dae", "options": {"snapshots": 2}},
        "affdg": {"objective": "denoiser_guided", "constraint": "projected", "guide": "dae"},
        "heldout": {"objective": "density_fit", "split": "val", "options": {"snapshots": 1}},
    },
    "evaluate": {"n_samples": 4, "density": "heldout", "c2st_steps": 10},
    "toy": {"restarts": 1, "steps": 20, "gan_steps": 20, "d_steps": 2, "mae_steps": 20, "dae_steps": 20,
            "batch_size": 32, "kde_samples": 2000,
            "eval_samples": 100, "curve_points": 21, "map_step": 0.1, "kde_grid_step": 0.1},
}


def _env() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
           "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)


def _jobs(dry_run_output: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run lists."""
    jobs, rule = set(), None
    for line in dry_run_output.splitlines():
        line = line.strip()
        if line.startswith("rule ") or line.startswith("localrule "):
            rule = line.split()[1].rstrip(":")
            jobs.add((rule, ""))
        elif line.startswith("wildcards:") and rule:
            jobs.discard((rule, ""))
            jobs.add((rule, line.removeprefix("wildcards:").strip()))
    return jobs


def _job_blocks(dry_run_output: str) -> list[str]:
    """The text of each job of a dry run (each starts with a timestamp line '[Wed Nov ...]')."""
    return re.split(r"\n(?=\[\w{3} \w{3} )", dry_run_output)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("study")
    (workdir / "params.yaml").write_text(yaml.safe_dump(TINY))
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_lint_is_clean():
    result = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--lint"],
                            cwd=REPO, capture_output=True, text=True, env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_study_outputs(study: Path):
    metrics = pd.read_csv(study / "results" / "metrics.csv")
    assert list(metrics.columns) == ["dataset", "method", "metric", "value"]
    toy = metrics[metrics.dataset == "toy"]
    assert {"mse", "affgan", "affdg", "map"} <= set(toy.method) and "cross_entropy" in set(toy.metric)
    assert (study / "results" / "toy" / "table1.md").read_text().count("|") > 20
    metrics = metrics[metrics.dataset == "grass"]
    # auxiliary runs (dae, heldout) are not evaluated; the real HR images are, for cross-entropy and the
    # real-data floor of the perception metrics (two halves of the test images) only
    perception = {"swd", "spectrum_distance", "hf_ratio", "c2st", "c2st_se"}
    assert set(metrics.method) == {"bicubic", "pinv", "hr", "mse", "affgan", "affdg"}
    assert set(metrics.metric) == {"lr_mse", "lr_rel", "lr_psnr", "psnr", "ssim", "cross_entropy"} | perception
    assert set(metrics[metrics.method == "hr"].metric) == {"cross_entropy"} | perception
    value = metrics.set_index(["method", "metric"]).value
    assert value["affgan", "lr_mse"] <= 1e-10 and value["affgan", "lr_rel"] <= 1e-5
    assert value["affdg", "lr_mse"] <= 1e-10  # guided by the dae run's snapshots, still consistent
    assert value["mse", "lr_rel"] >= 1e-3 and value["bicubic", "lr_rel"] >= 1e-3
    for name in ("metrics.png", "samples_grass.png", "training_grass.png", "toy.png", "likelihood_grass.png"):
        png = study / "results" / "figures" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "| grass | affgan |" in (study / "results" / "summary.md").read_text()
    claims = (study / "results" / "claims.md").read_text()  # verdicts computed from this study's metrics
    assert "| the projection is exact | §3.1, Table 2 | grass |" in claims and "| reproduced |" in claims
    logs = {p.relative_to(study / "results" / "logs").as_posix()
            for p in (study / "results" / "logs").rglob("*.log")}
    assert {"prepare/grass.log", "train/grass/mse.log", "train/grass/affgan.log",
            "evaluate/grass/pinv.log", "aggregate.log", "figures.log", "figures/grass.log"} <= logs
    assert not list(study.rglob("*.tmp")), "temp files left behind"


def test_html_report(study: Path):
    """`snakemake --report`: one self-contained HTML file with the figures, their captions (params filled
    in), the metrics table, provenance and run times."""
    result = snakemake(study, "--report", "report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (study / "report.html").read_text(encoding="utf-8", errors="replace")
    assert len(html) > 100_000  # images and data embedded: it opens without the results folder
    for text in ("Samples", "Provenance", "Metrics", "2-D toy", "samples_grass.png", "versions.csv",
                 "metrics.csv", "stride 4"):  # "stride 4": the operator settings rendered into a caption
        assert text in html, text
    assert (study / "results" / "provenance" / "versions.csv").read_text().count("torch") == 1


def test_second_run_does_nothing(study: Path):
    result = snakemake(study, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def test_changed_param_reruns_only_what_it_affects(study: Path, tmp_path: Path):
    workdir = tmp_path / "copy"
    shutil.copytree(study, workdir, symlinks=True)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["methods"]["affgan"]["options"] = {"instance_noise": 0.2}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    result = snakemake(workdir, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = _jobs(result.stdout)
    trained = {w for rule, w in jobs if rule == "train"}
    assert trained == {"dataset=grass, method=affgan"}
    assert not any(rule == "prepare" for rule, _ in jobs)
    assert not any(rule == "evaluate" and "method=mse" in w for rule, w in jobs)


def test_bad_params_stop_with_the_key_named(tmp_path: Path):
    params = {**TINY, "train": {**TINY["train"], "stpes": 3}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = snakemake(tmp_path, "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "params.train.stpes: unknown key (did you mean 'steps'?)" in output


def test_dvc_repro_in_a_fresh_clone(tmp_path: Path):
    """`dvc repro` runs the three stages through Snakemake in a fresh clone (tiny params), records
    dvc.lock, and afterwards DVC sees nothing to do and reads the metrics."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    # DVC's view is under test here, not the methods (the study fixture runs them all): two runs
    params = {**TINY, "methods": {k: TINY["methods"][k] for k in ("mse", "affgan")},
              "evaluate": {"n_samples": 4, "references": [], "density": "", "c2st_steps": 10}}
    (clone / "params.yaml").write_text(yaml.safe_dump(params))

    def dvc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "dvc"), *args], cwd=clone, capture_output=True, text=True,
                              env=_env(), timeout=600)

    result = dvc("repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for stage in ("prepare", "train", "evaluate"):
        assert f"Running stage '{stage}'" in result.stdout
    assert (clone / "dvc.lock").is_file() and (clone / "runs" / "grass" / "affgan" / "model.pt").is_file()
    assert dvc("status", "-q").returncode == 0
    shown = dvc("metrics", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert "log10_lr_mse" in shown.stdout and "affgan" in shown.stdout


def test_a_fresh_clone_plans_every_rule(tmp_path: Path):
    """Nothing committed is a workflow output, so in a fresh clone Snakemake plans every rule — the toy
    and the provenance too, whose only inputs are code (committed outputs of them were once skipped as
    "Nothing to be done ... missing metadata")."""
    tracked = subprocess.run(["git", "ls-files", "results", "data", "runs"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    assert tracked in ([], ["results/README.md"])
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    (clone / "params.yaml").write_text(yaml.safe_dump(TINY))
    result = subprocess.run([str(BIN / "snakemake"), "--snakefile", "workflow/Snakefile", "-n", "--cores", "1"],
                            cwd=clone, capture_output=True, text=True, env=_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    planned = {rule for rule, _ in _jobs(result.stdout)}
    assert {"prepare", "train", "evaluate", "aggregate", "claims", "figures", "toy", "provenance", "all"} <= planned


# ---- the paper scale and the real download rule -----------------------------------------------------------


def test_paper_scale_dry_run_lists_every_rule(tmp_path: Path):
    """`--config study=paper` with the repo's params: downloads, ImageNet preparation, every training on a
    GPU, evaluation, figures — planned without any of the data being present."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    result = snakemake(tmp_path, "-n", "--config", "study=paper")
    assert result.returncode == 0, result.stderr[-3000:]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    datasets, methods = set(params["datasets"]), set(params["methods"])
    jobs = _jobs(result.stdout)
    by_rule: dict[str, set[str]] = {}
    for rule, wildcards in jobs:
        by_rule.setdefault(rule, set()).add(wildcards)
    assert by_rule["download"] == {"dataset=grass, filename=grass1-without-rotations.zip",
                                   "dataset=faces, filename=img_align_celeba.zip"}
    assert by_rule["prepare"] == {f"dataset={d}" for d in datasets}
    assert by_rule["train"] == {f"dataset={d}, method={m}" for d in datasets for m in methods}
    assert {"evaluate", "aggregate", "figures", "toy", "all"} <= set(by_rule)
    # every training job asks for a GPU at paper scale, none in the demo
    train_blocks = [b for b in _job_blocks(result.stdout) if "rule train:" in b]
    assert len(train_blocks) == len(datasets) * len(methods)
    assert all("gpu=1" in b for b in train_blocks)
    demo = snakemake(tmp_path, "-n")
    assert all("gpu=0" in b for b in _job_blocks(demo.stdout) if "rule train:" in b)
    assert "rule download" not in demo.stdout


def _snakemake_here(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake started inside ``workdir`` (not with --directory, which overrides a `workdir:` directive)."""
    cmd = [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--cores", "2", *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=_env(), timeout=600)


def test_cpu_study_plans_its_runs_into_its_own_folder(tmp_path: Path):
    """`--config study=cpu` with the repo's params: grass, MSE, AffMSE and two AffGAN seeds,
    everything under studies/cpu/ (so the default study's results are never overwritten)."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    result = _snakemake_here(tmp_path, "-n", "--config", "study=cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    trained = {w for rule, w in _jobs(result.stdout) if rule == "train"}
    assert trained == {f"dataset=grass, method={m}" for m in ("mse", "affmse", "affgan", "affgan_seed1")}
    assert (tmp_path / "studies" / "cpu").is_dir() and not (tmp_path / "results").exists()


def test_a_study_workdir_receives_the_outputs(tmp_path: Path):
    """A real run of the prepare rule with `workdir: sub`: the data set lands in sub/data/."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**TINY, "workdir": "sub"}))
    result = _snakemake_here(tmp_path, "data/grass/manifest.json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "sub" / "data" / "grass" / "manifest.json").is_file()
    assert not (tmp_path / "data").exists() and (tmp_path / "sub" / "results" / "logs" / "prepare" / "grass.log").is_file()


@pytest.fixture
def http_server(tmp_path: Path):
    """A plain HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields its base URL."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_download_and_prepare_rules_over_http(tmp_path: Path, http_server):
    """The real download rule fetches a CelebA stand-in over HTTP, checks its SHA-256, and prepare makes
    the faces data set from it (crop box, 2× area resize, official partition)."""
    import hashlib

    from conftest import CELEBA_NUMBERS, make_celeba_zip

    base, www = http_server
    archive = make_celeba_zip(www / "img_align_celeba.zip", CELEBA_NUMBERS)
    params = {**TINY, "datasets": {"faces": {
        "source": "celeba", "hr_size": 64, "crop": [60, 25, 128], "n_train": 100, "n_val": 100, "n_test": 100,
        "download": {"url": f"{base}/img_align_celeba.zip", "filename": "img_align_celeba.zip",
                     "sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}}}}
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    result = snakemake(work, "data/faces/manifest.json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (work / "data/downloads/faces/img_align_celeba.zip").read_bytes() == archive.read_bytes()
    manifest = yaml.safe_load((work / "data/faces/manifest.json").read_text())
    assert manifest["source"] == "celeba" and manifest["counts"] == {"train": 6, "val": 3, "test": 3}
    assert "downloaded" in (work / "results/logs/download/faces/img_align_celeba.zip.log").read_text()

    # a wrong checksum in params: the rule fails with the digests in its log and leaves no archive
    params["datasets"]["faces"]["download"]["sha256"] = "f" * 64
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    (work / "data/downloads/faces/img_align_celeba.zip").unlink()
    result = snakemake(work, "data/downloads/faces/img_align_celeba.zip")
    assert result.returncode != 0
    log = (work / "results/logs/download/faces/img_align_celeba.zip.log").read_text()
    assert "f" * 64 in log and "Traceback" not in log
    folder = work / "data/downloads/faces"
    assert not folder.exists() or not list(folder.iterdir())
