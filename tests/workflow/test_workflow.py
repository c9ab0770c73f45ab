"""The real Snakemake workflow on a tiny config in a temp directory, its lint, and DVC's view of it."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from affsr.methods import super_resolves
from affsr.params import load_params

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "workflow" / "Snakefile"
BIN = Path(sys.executable).parent

# params.yaml as the params loader reads it: the tiny study below runs its methods, so a new objective
# (one file in affsr/methods/ + one entry in params.yaml) runs here with no edit of this file.
REPO_PARAMS = load_params(REPO / "params.yaml")
_REPO_DATA = yaml.safe_load((REPO / "params.yaml").read_text())


def one_method_per_objective(params=REPO_PARAMS) -> list[str]:
    """The first method of each objective in params.yaml, the guides they name and the held-out density
    model: every objective runs, each once (params order)."""
    chosen: dict[str, str] = {}
    for name, method in params.methods.items():
        chosen.setdefault(method.objective, name)
    names = set(chosen.values())
    names |= {params.methods[m].guide for m in names if params.methods[m].guide}
    names |= {params.evaluate.density} - {""}
    return [m for m in params.methods if m in names]


def tiny_params(methods: list[str] | None = None, **sections) -> dict:
    """A params file of seconds: params.yaml's ``methods`` (their objectives, constraints, options and
    guides; own `train:` overrides dropped, a few steps for all) and its toy, shrunk; ``sections``
    replace whole sections. The toy's per-method keys keep to the methods chosen."""
    methods = one_method_per_objective() if methods is None else methods
    chosen = {}
    for name in methods:
        method = {k: v for k, v in copy.deepcopy(_REPO_DATA["methods"][name]).items() if k != "train"}
        if "snapshots" in method.get("options", {}):  # at most two snapshots in a 6-step run
            method["options"]["snapshots"] = min(2, method["options"]["snapshots"])
        chosen[name] = method
    toy = copy.deepcopy(_REPO_DATA["toy"])
    toy.update(restarts=1, kde_samples=2000, kde_grid_step=0.1, eval_samples=100, map_step=0.1, curve_points=21)
    toy["train"] = {**toy.get("train", {}), "steps": 20, "batch_size": 32}
    for override in toy.get("objectives", {}).values():
        override.setdefault("train", {})["steps"] = 20
        if "d_steps" in override.get("options", {}):
            override["options"]["d_steps"] = 2
        if "snapshots" in override.get("options", {}):
            override["options"]["snapshots"] = 2
    toy["skip"] = [m for m in toy.get("skip", []) if m in chosen]
    toy["methods"] = {m: {**o, "train": {**o.get("train", {}), "steps": 20}}
                      for m, o in toy.get("methods", {}).items() if m in chosen}
    heldout = REPO_PARAMS.evaluate.density if REPO_PARAMS.evaluate.density in chosen else ""
    params = {
        "study": "demo",
        "paper": {"train": {"steps": 8}},  # DVC tracks params.yaml whole: a `paper` section as in the repo's
        "seed": 0,
        "operator": {"kind": "gaussian", "sigma": 1.0, "size": 9, "scale": 4},
        "datasets": {"grass": {"source": "skimage_grass", "hr_size": 16, "n_train": 64, "n_val": 8,
                               "n_test": 8}},
        "generator": {"width": 8, "blocks": 1},
        "discriminator": {"widths": [8, 16]},
        "denoiser": {"width": 8, "depth": 2},
        "density": {"width": 8, "layers": 2, "kernel": 3, "first_kernel": 3, "components": 2, "features": 2},
        "train": {"steps": 6, "batch_size": 8, "log_every": 2, "checkpoint_every": 3},
        "methods": chosen,
        "evaluate": {"n_samples": 4, "density": heldout, "c2st_steps": 10},
        "toy": toy,
    }
    return {**params, **copy.deepcopy(sections)}


TINY = tiny_params()


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


def _sr_methods(params: dict) -> list[str]:
    """The super-resolving methods of a params dict (the ones evaluated; auxiliary runs are not)."""
    return [m for m, spec in params["methods"].items() if super_resolves(spec["objective"])]


def test_study_outputs(study: Path):
    sr = _sr_methods(TINY)
    constraint = {m: TINY["methods"][m].get("constraint", "projected") for m in sr}
    metrics = pd.read_csv(study / "results" / "metrics.csv")
    assert list(metrics.columns) == ["dataset", "method", "metric", "value"]
    toy = metrics[metrics.dataset == "toy"]
    assert {*sr, "map"} - set(TINY["toy"]["skip"]) <= set(toy.method) and "cross_entropy" in set(toy.metric)
    assert (study / "results" / "toy" / "table1.md").read_text().count("|") > 20
    metrics = metrics[metrics.dataset == "grass"]
    # auxiliary runs (denoiser, density models) are not evaluated; the real HR images are, for
    # cross-entropy and the real-data floor of the perception metrics (two halves of the test images) only
    perception = {"swd", "spectrum_distance", "hf_ratio", "c2st", "c2st_se"}
    assert set(metrics.method) == {"bicubic", "pinv", "hr", *sr}
    assert set(metrics.metric) == {"lr_mse", "lr_rel", "lr_psnr", "psnr", "ssim", "cross_entropy"} | perception
    assert set(metrics[metrics.method == "hr"].metric) == {"cross_entropy"} | perception
    value = metrics.set_index(["method", "metric"]).value
    for m in sr:  # the projection makes any objective consistent (guided ones too); none leaves it free
        if constraint[m] == "projected":
            assert value[m, "lr_mse"] <= 1e-10 and value[m, "lr_rel"] <= 1e-5, m
        elif constraint[m] == "none":
            assert value[m, "lr_rel"] >= 1e-3, m
    assert value["bicubic", "lr_rel"] >= 1e-3
    for name in ("metrics.png", "samples_grass.png", "training_grass.png", "toy.png", "likelihood_grass.png"):
        png = study / "results" / "figures" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert all(f"| grass | {m} |" in (study / "results" / "summary.md").read_text() for m in sr)
    claims = (study / "results" / "claims.md").read_text()  # verdicts computed from this study's metrics
    assert "| the projection is exact | §3.1, Table 2 | grass |" in claims and "| reproduced |" in claims
    logs = {p.relative_to(study / "results" / "logs").as_posix()
            for p in (study / "results" / "logs").rglob("*.log")}
    assert {"prepare/grass.log", *(f"train/grass/{m}.log" for m in TINY["methods"]),
            "evaluate/grass/pinv.log", "aggregate.log", "figures.log", "figures/grass.log"} <= logs
    # every rule that runs a command timed each job (results/benchmarks/<rule>/...)
    timed = {p.relative_to(study / "results" / "benchmarks").parts[0].removesuffix(".tsv")
             for p in (study / "results" / "benchmarks").rglob("*.tsv")}
    assert timed == set(_rule_blocks()) - {"download"}  # the tiny study downloads nothing
    assert not list(study.rglob("*.tmp")), "temp files left behind"


def _rule_blocks() -> dict[str, str]:
    """rule name → its text, for every rule of workflow/rules/*.smk that runs a command (`shell:`)."""
    blocks = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            found = re.match(r"rule (\w+):", block)
            if found and "shell:" in block:
                blocks[found.group(1)] = block
    return blocks


def test_every_rule_logs_times_and_declares_its_code():
    """Each command rule has `log:` and `benchmark:`, and declares as inputs the package files of the
    `affsr` verb its shell runs (`code("<verb>")`, derived from the imports: common.smk)."""
    blocks = _rule_blocks()
    assert {"prepare", "train", "evaluate", "aggregate", "figures", "toy", "claims"} <= set(blocks)
    for rule, block in blocks.items():
        assert "\n    log:" in block and "\n    benchmark:" in block, rule
        verbs = re.findall(r"affsr (\w+) ", block)
        assert len(set(verbs)) == 1, (rule, verbs)
        assert f'code=code("{verbs[0]}")' in block or f"code={verbs[0]}_code" in block, (rule, verbs)


def test_each_job_depends_on_the_objectives_it_runs(study: Path):
    """The derived code inputs of each job (Snakemake's --detailed-summary lists them): a training run
    depends on its own objective's file and its guide's, not on the others', and preparing data on
    none: a new or edited objective reruns exactly the jobs that run it."""
    result = snakemake(study, "--detailed-summary")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    header = next(r for r in rows if r[0] == "output_file")
    inputs = {r[0]: r[header.index("input-file(s)")] for r in rows if len(r) == len(header)}
    methods = REPO_PARAMS.methods
    for name in TINY["methods"]:
        used = {methods[name].objective, methods[methods[name].guide].objective if methods[name].guide else None}
        files = inputs[f"runs/grass/{name}/model.pt"]
        for objective in {m.objective for m in methods.values()}:
            assert (f"affsr/methods/{objective}.py" in files) == (objective in used), (name, objective)
        assert "affsr/training/loop.py" in files and "affsr/methods/base.py" in files
    assert "affsr/methods/" not in inputs["data/grass/manifest.json"].replace("affsr/methods/__init__.py", "")


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
    changed = _sr_methods(params)[0]
    params["methods"][changed]["seed_offset"] = 1  # another training seed of this one run
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    result = snakemake(workdir, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = _jobs(result.stdout)
    assert {w for rule, w in jobs if rule == "train"} == {f"dataset=grass, method={changed}"}
    assert not any(rule == "prepare" for rule, _ in jobs)
    assert {w for rule, w in jobs if rule == "evaluate"} == {f"dataset=grass, method={changed}"}


@pytest.mark.parametrize("change, config, message", [
    ({"train": {"stpes": 3}}, [], "params.yaml: params.train.stpes: unknown key (did you mean 'steps'?)"),
    ({"generator": {"width": 0}}, [], "params.yaml: params.generator.width: must be ≥ 1, got 0"),
    ({}, ["train={lr: -1}"], "--config: params.train.lr: must be > 0, got -1"),
], ids=["unknown key", "range in the file", "range on the command line"])
def test_bad_params_stop_the_plan_with_the_key_and_its_origin_named(tmp_path: Path, change, config, message):
    """`snakemake -n` already refuses a bad value (no job starts), naming the dotted key and whether it
    came from params.yaml or --config."""
    params = copy.deepcopy(TINY)
    for section, values in change.items():
        params[section] = {**params[section], **values}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = snakemake(tmp_path, "-n", *(["--config", *config] if config else []))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert message in output and "Traceback" not in output, output[-2000:]


def fresh_clone(dest: Path) -> Path:
    """A clone of this repository with the working tree's uncommitted changes laid over it (modified,
    deleted and new files git does not ignore): what a commit of the tree as it is would give."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    changed = subprocess.run(["git", "ls-files", "-z", "--modified", "--deleted", "--others", "--exclude-standard"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, changed):
        source, target = REPO / name, dest / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif target.is_file():
            target.unlink()
    return dest


def test_make_study_and_dvc_repro_agree_in_a_fresh_clone(tmp_path: Path):
    """`make study` in a fresh clone (tiny params) runs the study through Snakemake and records it for
    DVC (`dvc commit`): afterwards `dvc status` is clean, `dvc repro` finds every stage unchanged and
    `dvc metrics show` reads the metrics; nothing DVC wrote is staged in git."""
    stamp = BIN.parent / ".installed"  # the Makefile's install stamp: `make` must not reinstall the venv
    if not stamp.is_file() or not shutil.which("make"):
        pytest.skip(f"needs make and the venv `make venv` builds ({stamp} missing)")
    clone = fresh_clone(tmp_path / "clone")
    # DVC's bookkeeping is under test here, not the methods (the study fixture runs them all): two runs
    unguided = [m for m in _sr_methods(TINY) if not TINY["methods"][m].get("guide")]
    params = tiny_params(unguided[:2], evaluate={"n_samples": 4, "references": [], "density": "", "c2st_steps": 10})
    (clone / "params.yaml").write_text(yaml.safe_dump(params))
    os.utime(clone / "pyproject.toml", (0, 0))  # older than the stamp: nothing to install
    made = subprocess.run(["make", "study", f"VENV={BIN.parent}", "CORES=2"], cwd=clone, capture_output=True,
                          text=True, env=_env(), timeout=600)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    assert "recorded in dvc.lock" in made.stdout

    def dvc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "dvc"), *args], cwd=clone, capture_output=True, text=True,
                              env=_env(), timeout=600)

    status = dvc("status")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
    repro = dvc("repro")
    assert repro.returncode == 0, repro.stdout[-3000:] + repro.stderr[-3000:]
    assert all(f"Stage '{s}' didn't change, skipping" in repro.stdout for s in ("prepare", "train", "evaluate"))
    shown = dvc("metrics", "show", "--json")
    assert shown.returncode == 0 and "log10_lr_mse" in shown.stdout, shown.stdout + shown.stderr
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=clone, capture_output=True,
                            text=True, check=True).stdout.split()
    assert staged == [], staged  # dvc.lock stays out of git (.dvc/config autostage = false)
    ignored = subprocess.run(["git", "status", "--porcelain", "--", ".gitignore"], cwd=clone,
                             capture_output=True, text=True, check=True).stdout
    assert ignored == ""  # DVC appended nothing to .gitignore (data/ and runs/ are ignored already)


def test_a_fresh_clone_plans_every_rule(tmp_path: Path):
    """Nothing committed is a workflow output, so in a fresh clone Snakemake plans every rule — the toy
    and the provenance too, whose only inputs are code (committed outputs of them were once skipped as
    "Nothing to be done ... missing metadata")."""
    tracked = subprocess.run(["git", "ls-files", "results", "data", "runs", "dvc.lock"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked in ([], ["results/README.md"])
    clone = fresh_clone(tmp_path / "clone")
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
    """`--config study=cpu` with the repo's params: grass and the natural photos, MSE, AffMSE, SoftGAN and
    two AffGAN seeds, everything under studies/cpu/ (so the default study's results are never overwritten)."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    result = _snakemake_here(tmp_path, "-n", "--config", "study=cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    trained = {w for rule, w in _jobs(result.stdout) if rule == "train"}
    assert trained == {f"dataset={d}, method={m}" for d in ("grass", "natural")
                       for m in ("mse", "affmse", "affgan", "affgan_seed1", "softgan")}
    assert (tmp_path / "studies" / "cpu").is_dir() and not (tmp_path / "results").exists()
    # the longest runs first (priority = steps × batch), so no 6,000-step GAN run starts last on 2 cores
    priority = {re.search(r"method=(\w+)", b).group(1) + re.search(r"dataset=(\w+)", b).group(1):
                int(re.search(r"priority: (\d+)", b).group(1))
                for b in _job_blocks(result.stdout) if "rule train:" in b}
    gans = [v for k, v in priority.items() if "gan" in k]
    assert len(priority) == 10 and min(gans) > max(v for k, v in priority.items() if "gan" not in k)


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
        "download": {"urls": [f"{base}/img_align_celeba.zip"], "filename": "img_align_celeba.zip",
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


def test_claims_show_another_tier_where_its_results_exist(tmp_path):
    """evaluate.tiers: with the cpu tier's results in its workdir, the demo's claims rule reads them too
    (and reruns when they appear); without them it reads its own alone."""
    params = {**TINY, "cpu": {"workdir": "studies/cpu"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    alone = snakemake(tmp_path, "-n", "-p", "--forceall", "results/claims.md")
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert "--tier" not in alone.stdout
    (tmp_path / "studies/cpu/results").mkdir(parents=True)
    (tmp_path / "studies/cpu/results/metrics.csv").write_text("dataset,method,metric,value\ngrass,mse,psnr,19.0\n")
    both = snakemake(tmp_path, "-n", "-p", "--forceall", "results/claims.md")
    assert both.returncode == 0, both.stderr[-3000:]
    assert f"--tier cpu={tmp_path}/studies/cpu/results/metrics.csv" in both.stdout
