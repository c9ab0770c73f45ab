"""The paper-scale smoke study: `study: smoke` (params.yaml `paper:`, then `smoke:`) run end to end on a CPU.

What it proves: every paper-scale rule runs at the paper's shapes and network sizes — the download rule
over HTTP, CelebA's partition by file number, the Kylberg member pattern, ImageNet's layout and 20 kB
filter, grass 64→16 grey, CelebA 64→16 colour, ImageNet 128→32 colour, SRResNet 8 × 64, discriminator
64…512, denoiser 4 × 128, density model 4 × 64 with 32 components — through training, evaluation,
aggregation, figures, claims, the toy and Snakemake's HTML report. A few images and steps only, so the
numbers mean nothing; `make smoke` runs it (CI: .ci/run), in about ten minutes on 2 cores.

Steps: (1) stand-in archives with the real layouts (scripts/standins.py) under studies/smoke/standins/;
(2) a stdlib HTTP server on 127.0.0.1 (a free port) serving them; (3) a --configfile with what is only
known now — the mirrors' urls, the archives' sha256/md5/size, the ImageNet folder; (4) Snakemake,
for real; (5) the server stopped; (6) the outputs checked (a metrics row for every method × data set,
claims, figures, report); (7) each rule's peak memory tabulated (scripts/rule_memory.py).
Exit status 0 only if everything ran and checked out. studies/smoke/ is removed first (``--keep`` to
reuse it), so every run starts from nothing; nothing outside it is written.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from standins import Standins, make_standins  # noqa: E402  (a sibling script)

REPO = Path(__file__).resolve().parents[1]
STUDY = "smoke"


def _workdir() -> Path:
    """The smoke study's folder, from params.yaml (`smoke: workdir:`)."""
    from affsr.params import load_params

    data = yaml.safe_load((REPO / "params.yaml").read_text())
    return REPO / load_params({**data, "study": STUDY}, {}).workdir


@contextmanager
def serve(root: Path):
    """A plain HTTP server on 127.0.0.1, a free port, serving ``root`` from a thread; yields its base url."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # the download rule logs what it fetched
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _download(url: str, path: Path) -> dict:
    """The download settings of one served archive: its url (a one-mirror list) and pinned digests."""
    data = path.read_bytes()
    return {"urls": [url], "filename": path.name, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()}


def override(base: str, standins: Standins) -> dict:
    """The run's --configfile: the `smoke:` section's run-time values (merged over params.yaml's)."""
    datasets = {}
    for name, path in (("grass", standins.kylberg_zip), ("faces", standins.celeba_zip)):
        datasets[name] = {"download": _download(f"{base}/{path.name}", path)}
    datasets["natural"] = {"path": str(standins.imagenet.resolve())}
    return {"study": STUDY, STUDY: {"datasets": datasets}}


def snakemake(configfile: Path, *args: str, log: Path | None = None) -> int:
    """Snakemake from the repository root (the study's `workdir:` moves it into studies/smoke/)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    cmd = [str(bin_dir / "snakemake"), "--snakefile", "workflow/Snakefile", "--configfile", str(configfile), *args]
    print("+", " ".join(cmd), flush=True)
    if log is None:
        return subprocess.run(cmd, cwd=REPO, env=env).returncode
    with open(log, "w") as handle:
        return subprocess.run(cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode


def check_outputs(workdir: Path, params) -> list[str]:
    """What is missing from a finished smoke study (empty: all there)."""
    import pandas as pd

    from affsr.methods import super_resolves

    results = workdir / "results"
    problems = []
    expected = ["metrics.csv", "metrics.json", "summary.md", "claims.md", "figures/metrics.png", "figures/toy.png",
                "toy/table1.md", "provenance/params.yaml", "report.html",
                *(f"figures/{kind}_{d}.png" for d in params.datasets for kind in ("samples", "training"))]
    problems += [f"missing {results / name}" for name in expected if not (results / name).is_file()]
    if (results / "metrics.csv").is_file():
        table = pd.read_csv(results / "metrics.csv")
        evaluated = [*params.evaluate.references, "hr",
                     *(m for m, cfg in params.methods.items() if super_resolves(cfg.objective))]
        have = set(zip(table.dataset, table.method))
        problems += [f"metrics.csv: no row for {m} on {d}" for d in params.datasets for m in evaluated
                     if (d, m) not in have]
    for name, ds in params.datasets.items():
        manifest = workdir / "data" / name / "manifest.json"
        if not manifest.is_file():
            problems.append(f"missing {manifest}")
        if ds.download.filename:  # fetched over HTTP by the download rule, not found lying there
            log = results / "logs" / "download" / name / f"{ds.download.filename}.log"
            if "downloaded" not in (log.read_text() if log.is_file() else ""):
                problems.append(f"{log}: no download recorded")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", default="2", help="Snakemake --cores (default 2: the CI machine)")
    parser.add_argument("--keep", action="store_true", help="reuse studies/smoke/ instead of starting over")
    args = parser.parse_args(argv)

    from affsr.params import load_params

    workdir = _workdir()
    if workdir.exists() and not args.keep:
        shutil.rmtree(workdir)
    start = time.monotonic()
    standins = make_standins(workdir / "standins")
    configfile = workdir / "standins" / "override.yaml"
    with serve(standins.celeba_zip.parent) as base:
        configfile.write_text(yaml.safe_dump(override(base, standins), sort_keys=False))
        status = snakemake(configfile, "--cores", args.cores)
        if status == 0:  # the report reads the finished study (no jobs); its own log, not the console
            status = snakemake(configfile, "--report", "results/report.html", log=workdir / "report.log")
    minutes = (time.monotonic() - start) / 60
    if status:
        print(f"smoke study FAILED (Snakemake exit {status}) after {minutes:.1f} min; logs: {workdir}/results/logs",
              file=sys.stderr)
        return 1
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    params = load_params({**data, "study": STUDY}, {})
    problems = check_outputs(workdir, params)
    if problems:
        print("smoke study FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    import rule_memory  # noqa: E402  (a sibling script)

    print("measuring evaluation's memory per test image (scripts/rule_memory.py --calibrate)", flush=True)
    calibration = rule_memory.calibrate(workdir)
    (workdir / "results" / rule_memory.CALIBRATION).write_text(json.dumps(calibration, indent=1))
    print(rule_memory.memory_table(workdir / "results" / "benchmarks", REPO / "params.yaml"))
    print(f"smoke study passed: every paper-scale rule ran ({workdir}); the workflow took {minutes:.1f} min, "
          f"with the memory calibration {(time.monotonic() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
