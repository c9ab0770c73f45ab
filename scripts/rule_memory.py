"""Each rule's peak memory at smoke size, extrapolated to paper size and set against params `resources:`.

Input: the ``benchmark:`` files of a finished smoke study (``<study>/results/benchmarks/<rule>/….tsv``,
column ``max_rss`` in MB, Snakemake's peak resident set of the job's processes) and params.yaml. Output:
a Markdown table, one row per rule: jobs, the largest smoke peak, the paper-scale estimate of the job
that needs most — host RAM and GPU memory — the paper `resources: mem_mb`, and a verdict (``too small``
unless the host RAM estimate, plus the GPU part for a rule without `gpu:`, fits with a 25 % margin).
docs/benchmarks.md ("Peak memory per rule") holds the table; `make smoke` prints it.

The model. The smoke study has the paper's networks and image shapes, so what differs at paper scale is
how many images a job holds and the batch size. Each job's paper-scale peak is its smoke peak (the fixed
part: interpreter, torch, the networks and their optimiser state at paper size, a few images) plus the
terms that grow, each computed from both studies' params:

* ``download``: streams 1 MiB blocks and hashes them in one pass: nothing grows.
* ``prepare`` (CPU): holds the whole data set before writing it (``affsr.data.prepare``; LR made in chunks
  of 256, ``np.savez_compressed`` writes in chunks): HR uint8 + LR float32 = 1.25 bytes per HR pixel ×
  (n_train + n_val + n_test) × C × H²; grass also decodes every texture (160 × 576² float64).
* ``train``: host: the training split (1.25 bytes per HR pixel: HR stays uint8); GPU: the activations ×
  (paper batch / smoke batch), the activations being the run's smoke peak above AffInit's on the same data
  (AffInit trains 0 steps: same process, data and networks, no forward or backward pass). With
  ``data_on_device`` the split is on the GPU too.
* ``evaluate``: host: the test split and every output at once (float32; the references' outputs float64)
  with the metrics' temporaries, a cost per test image (the references', whose outputs are float64: an
  upper bound); GPU: the generator and the held-out density model, each run on 256 images at a time, a
  cost per image of that chunk. All three are measured (:func:`calibrate`, ``--calibrate``: ``affsr
  evaluate`` on the smoke study's ImageNet set tiled to 4 and 260 test images, and at 12 with and without
  the density model) and scaled by C × H² to the other sets; a stochastic generator's 3 extra draws
  and their stacked copy (7 float32 copies in all) are added.
* ``toy`` and the local rules (aggregate, claims, figures, provenance): the same work at both scales,
  except the toy, which the smoke study shrinks: its paper peak is the default study's (same toy settings),
  read from ``results/benchmarks/toy.tsv`` when that exists.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MB = 1e6  # Snakemake's max_rss is in MB (10^6 bytes)
MARGIN = 1.25  # an estimate within 25 % of the limit counts as too small
TEXTURE_BYTES = 576 * 576 * 8  # one Kylberg sample decoded as float64
#: evaluate without a calibration: float32 copies of the test split assumed alive at the peak
EVALUATE_COPIES = 12.0
DRAWS = 4  # affsr.evaluation.evaluate.DRAWS: outputs per input of a stochastic generator
CHUNK = 256  # affsr.evaluation.evaluate.super_resolve and affsr.nets.density.cross_entropy: images per forward pass


def _peak_mb(cmd: list[str], cwd: Path) -> float:
    """Peak resident memory (MB) of one command, its children included: a fresh Python process runs it
    and reports ``RUSAGE_CHILDREN`` (KiB on Linux), so earlier measurements do not leak into this one."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "sys.stderr.write(r.stderr[-2000:]) if r.returncode else None; "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=cwd, capture_output=True, text=True, check=True)
    kib = float(out.stdout.strip().splitlines()[-1])
    if kib < 0:
        raise RuntimeError(f"calibration command failed: {' '.join(cmd)}\n{out.stderr}")
    return kib * 1024 / MB


def _tiled_copy(data_dir: Path, out: Path, n: int) -> Path:
    """A copy of a prepared data set whose test split is its test images repeated to ``n``."""
    import numpy as np

    shutil.copytree(data_dir, out, dirs_exist_ok=True)
    with np.load(data_dir / "test.npz") as z:
        arrays = {k: z[k] for k in z.files}
    reps = -(-n // len(arrays["hr"]))
    np.savez(out / "test.npz", **{k: np.concatenate([v] * reps)[:n] for k, v in arrays.items()})
    manifest = json.loads((data_dir / "manifest.json").read_text())
    manifest["counts"]["test"] = n
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def calibrate(workdir: Path, dataset: str = "natural", sizes: tuple[int, int] = (4, 260),
              density_images: int = 12) -> dict[str, float]:
    """Evaluation's growing terms, measured on a finished smoke study's ``dataset`` (MB per test image).

    ``affsr evaluate`` on copies of the data set whose test split is tiled to ``sizes`` images (no density
    model): ``host`` = the slope of bicubic (outputs float64, the metrics' temporaries: an upper bound for
    every method, whose outputs are float32); ``generator`` = what the MSE run's first 256-image generator
    chunk adds per image (its slope minus bicubic's); ``density`` = the held-out density model's cost per
    image of its chunk, from the real images with and without it at ``density_images``. ``pixels``:
    C × H² of that data set, to scale to the others."""
    workdir = Path(workdir)
    tmp = Path(tempfile.mkdtemp(prefix="affsr-memory-"))
    try:
        data = {n: _tiled_copy(workdir / "data" / dataset, tmp / f"n{n}", n) for n in (*sizes, density_images)}

        def evaluate(n: int, method: str, *extra: str) -> float:
            out = tmp / f"{method}{n}"
            return _peak_mb([sys.executable, "-m", "affsr", "evaluate", "--threads", "1", "--data", str(data[n]),
                             "--method", method, *extra, "--out", f"{out}.csv", "--samples", f"{out}.npz",
                             "--n-samples", "2", "--c2st-steps", "2"], workdir)

        small, large = sizes
        model = ["--checkpoint", str(workdir / "runs" / dataset / "mse" / "model.pt")]
        density = ["--density", str(workdir / "runs" / dataset / "density_heldout" / "model.pt")]
        host = (evaluate(large, "bicubic") - evaluate(small, "bicubic")) / (large - small)
        trained = (evaluate(large, "mse", *model) - evaluate(small, "mse", *model)) / (large - small)
        manifest = json.loads((data[small] / "manifest.json").read_text())
        return {
            "dataset": dataset,
            "pixels": manifest["channels"] * manifest["hr_size"] ** 2,
            "host": host,
            "generator": max(0.0, trained - host),
            "density": (evaluate(density_images, "hr", *density) - evaluate(density_images, "hr")) / density_images,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_benchmarks(root: Path) -> dict[str, dict[str, float]]:
    """rule → {job (its path under the rule, no .tsv) → max_rss MB} from Snakemake's benchmark files."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for path in sorted(Path(root).rglob("*.tsv")):
        rel = path.relative_to(root).with_suffix("")
        rule, job = rel.parts[0], "/".join(rel.parts[1:]) or rel.parts[0]
        with open(path) as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        values = [float(r["max_rss"]) for r in rows if r.get("max_rss") not in (None, "", "NA", "-")]
        if values:
            out[rule][job] = max(values)
    return dict(out)


def _params(path: Path, study: str):
    from affsr.params import load_params

    data = yaml.safe_load(Path(path).read_text())
    return load_params({**data, "study": study}, {})


def _channels(source: str) -> int:
    from affsr.data.sources import SOURCES

    return 3 if SOURCES[source].colour else 1


def _pixels(ds, splits=("train", "val", "test")) -> int:
    """HR pixels × channels of the given splits of a data set (counts as configured: caps)."""
    n = sum(getattr(ds, f"n_{s}") for s in splits) * (2 if ds.mirror_train and "train" in splits else 1)
    return n * _channels(ds.source) * ds.hr_size**2


def _texture_term(ds, samples: int) -> float:
    return samples * TEXTURE_BYTES if ds.source == "kylberg_grass" else 0.0


def _evaluate_growth(calibration: dict | None, paper, smoke, dataset: str, method: str) -> tuple[float, float]:
    """(host MB, network MB) an evaluation of ``method`` on ``dataset`` gains from smoke to paper size: the
    test split and outputs (host), and the generator's chunks of 256 images and the density model's chunks
    (sized by memory: affsr.nets.density.chunk_size) on the GPU in a GPU job, on the host without one."""
    from affsr.methods import super_resolves

    n_paper, n_smoke = paper.datasets[dataset].n_test, smoke.datasets[dataset].n_test
    pixels = _pixels(paper.datasets[dataset], ("test",)) / n_paper  # C × H² of one image
    cfg = paper.methods.get(method)
    trained = cfg is not None and super_resolves(cfg.objective)
    chunk = min(CHUNK, n_paper) - min(CHUNK, n_smoke)
    scoring = _density_chunk(paper, dataset)  # the density model's chunks are sized by memory
    density_chunk = min(scoring, n_paper) - min(scoring, n_smoke)
    if calibration is None:  # no measurement: EVALUATE_COPIES float32 copies of every image, no chunk term
        return EVALUATE_COPIES * 4 * pixels / MB * (n_paper - n_smoke), 0.0
    ratio = pixels / calibration["pixels"]
    host = ratio * calibration["host"]
    if trained and {**vars(paper.generator), **cfg.generator}.get("noise", 0) > 0:
        host += (2 * DRAWS - 1) * 4 * pixels / MB  # the other draws, and all of them stacked
    network = ratio * ((calibration["generator"] * chunk if trained else 0.0)
                       + (calibration["density"] * density_chunk if paper.evaluate.density else 0.0))
    return host * (n_paper - n_smoke), network


def _density_chunk(paper, dataset: str) -> int:
    """Images per scoring chunk of the paper's held-out density model on ``dataset`` (affsr.nets.density.chunk_size)."""
    from affsr.nets.density import DensityModel
    from affsr.evaluation.likelihood import chunk_size

    ds = paper.datasets[dataset]
    return chunk_size(DensityModel(_channels(ds.source), paper.density), ds.hr_size, ds.hr_size)


def extrapolate(bench: dict[str, dict[str, float]], smoke, paper, demo_toy: float | None,
                calibration: dict | None = None, smoke_textures: int = 8) -> dict[str, tuple[str, float, float, float]]:
    """rule → (job, its smoke peak MB, its paper-scale host RAM MB in a GPU job, its paper-scale GPU memory
    MB), for the job with the largest host + GPU estimate (on a CPU-only run both are host RAM)."""
    out = {}
    for rule, jobs in bench.items():
        best = None
        for job, peak in jobs.items():
            parts = job.split("/")
            host, gpu = peak, 0.0
            if rule == "prepare":
                d = parts[0]
                host += 1.25 * (_pixels(paper.datasets[d]) - _pixels(smoke.datasets[d])) / MB
                host += (_texture_term(paper.datasets[d], 160) - _texture_term(smoke.datasets[d], smoke_textures)) / MB
            elif rule == "train" and len(parts) == 2:
                d, m = parts
                split = (paper.methods[m].split,)
                host += 1.25 * (_pixels(paper.datasets[d], split) - _pixels(smoke.datasets[d], split)) / MB
                activations = max(0.0, peak - jobs.get(f"{d}/affinit", peak))
                host -= activations  # forward/backward run on the GPU
                gpu = activations * paper.train.batch_size / smoke.train.batch_size
            elif rule == "evaluate" and len(parts) == 2:
                grow, gpu = _evaluate_growth(calibration, paper, smoke, *parts)
                host += grow
            elif rule == "toy" and demo_toy is not None:
                host = demo_toy
            if best is None or host + gpu > best[2] + best[3]:
                best = (job, peak, host, gpu)
        out[rule] = best
    return out


CALIBRATION = "memory_calibration.json"  # beside the benchmarks folder, written by `--calibrate`


def memory_table(benchmarks: Path, params_file: Path, study: str = "smoke",
                 demo_benchmarks: Path | None = None) -> str:
    """The Markdown table of docs/benchmarks.md ("Peak memory per rule")."""
    smoke, paper = _params(params_file, study), _params(params_file, "paper")
    bench = read_benchmarks(benchmarks)
    calibration_file = Path(benchmarks).parent / CALIBRATION
    calibration = json.loads(calibration_file.read_text()) if calibration_file.is_file() else None
    toy_file = (demo_benchmarks or REPO / "results" / "benchmarks") / "toy.tsv"
    demo_toy = read_benchmarks(toy_file.parent).get("toy", {}).get("toy") if toy_file.is_file() else None
    rows = ["| rule | jobs | smoke peak (MB) | largest job at paper size | host RAM (MB) | GPU memory (MB) | "
            "paper mem_mb | verdict |", "|---|---:|---:|---|---:|---:|---:|---|"]
    for rule, (job, peak, host, gpu) in sorted(extrapolate(bench, smoke, paper, demo_toy, calibration).items()):
        res = paper.resources.get(rule)
        if res is None:
            verdict, limit = "local rule", ""
        else:
            need = host if res.gpu else host + gpu  # without a GPU the networks' memory is host RAM too
            verdict, limit = ("ok" if need * MARGIN <= res.mem_mb else "**too small**"), f"{res.mem_mb:,}"
        rows.append(f"| {rule} | {len(bench[rule])} | {max(bench[rule].values()):,.0f} | {job} | {host:,.0f} | "
                    f"{f'{gpu:,.0f}' if gpu else ''} | {limit} | {verdict} |")
    if calibration:
        rows.append(f"\nevaluate, measured per {calibration['dataset']} test image: {calibration['host']:.2f} MB "
                    f"(host: data, outputs, metrics), and per image of a {CHUNK}-image chunk "
                    f"{calibration['generator']:.1f} MB (the generator) and {calibration['density']:.1f} MB "
                    f"(the held-out density model)")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, nargs="?", default=REPO / "studies/smoke",
                        help="a finished smoke study (default: studies/smoke); its results/benchmarks are read")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--calibrate", action="store_true",
                        help="first measure evaluation's per-image memory on the study's natural set (≈ 1 min)")
    args = parser.parse_args(argv)
    benchmarks = args.workdir / "results" / "benchmarks"
    if not benchmarks.is_dir():
        print(f"{benchmarks}: no benchmark folder; run `make smoke` first", file=sys.stderr)
        return 1
    if args.calibrate:
        (benchmarks.parent / CALIBRATION).write_text(json.dumps(calibrate(args.workdir), indent=1))
    print(memory_table(benchmarks, args.params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
