"""Measured cost of every paper-scale training run (``study: paper``) on this machine, per run and per
data set, from a few real training steps of each cost class at the paper's image sizes.

    python benchmarks/paper_cost.py --markdown paper_cost.md          # every class: ≈ 5 min, 1 core
    python benchmarks/paper_cost.py --only grass:pixel natural:gan --steps 3

What is timed: ``affsr.training.loop.fit`` — the loop ``affsr train`` runs — for the method's objective ×
constraint built from params.yaml with ``study: paper`` exactly as ``affsr train`` builds it (generator
8 × 64, discriminator 64/128/256/512, denoiser 128 × 4, density model 4 × 64, kernel 5, first 7, 32
components), on random uint8 HR images of the data set's size and colour (grass 64² grey, faces 64²
colour, natural 128² colour; LR = A·HR as ``prepare`` makes them: speed does not depend on pixel values,
so no download is needed). Guided runs (AffDG, AffLL) get untrained snapshots of their guide network,
which cost the same as trained ones.

Cost classes: runs that differ only in what costs the same are measured once — per data set, one run
per objective (mse, mae, affmse and affinit are ``pixel``; affgan, softgan and affgan_z ``gan``; ...),
the one with the projection where there is one (the dearest: mse, without it, is over-estimated by the
projection's share of the step). The timed batch (``--batch``, default 16) is smaller than the
configured 64 to keep the run short; a CPU's time per image is flat in the batch size at these sizes,
so seconds per step are scaled by 64 / batch (``--batch 64`` measures the real thing).

One torch thread by default: the figures are per core, and they stay right on a shared machine. With
two threads on two cores that other jobs also use, OpenMP's threads wait for each other at every
barrier while one is descheduled: the same step measured 5–10× slower, and varied as much from run to
run (docs/benchmarks.md). On a quiet machine ``--threads N`` measures N cores.

Estimated hours = measured seconds per step × the run's configured steps (``train.steps`` × the data
set's ``steps_scale``, with the method's own overrides). GPU columns are estimates, not measurements:
each run's CPU time scaled by the H100 reference of issue 15 for the generator's MSE step (SRResNet 8 ×
64, RGB 32 → 128, batch 64: 2,941 img/s fp32 eager, 7,198 img/s bf16 + channels_last + compile) over
this CPU's natural ``pixel`` step — assuming every network speeds up as the generator does.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import yaml

from affsr.training.build import build_objective
from affsr.training.batches import image_batch_sampler
from affsr.params import load_params
from affsr.data.sources import SOURCES
from affsr.training.loop import fit
import train_step  # same directory: the pipeline's benchmark helpers
from train_step import _data, _guides, _settings

#: Issue 15's H100 reference (img/s) for SRResNet 8 × 64, RGB 32 → 128, batch 64, MSE step.
H100_FP32, H100_FAST = 2941.0, 7198.0
#: Which run of a cost class is timed: the constraint that costs most first.
CONSTRAINT_ORDER = ("projected_box", "projected", "soft", "none")


def cost_classes(params) -> dict[str, dict[str, list[str]]]:
    """dataset → objective → the methods of that cost class, the one to time first."""
    classes: dict[str, dict[str, list[str]]] = {}
    for dataset in params.datasets:
        by_objective: dict[str, list[str]] = {}
        for name, method in params.methods.items():
            by_objective.setdefault(method.objective, []).append(name)
        for names in by_objective.values():
            names.sort(key=lambda n: CONSTRAINT_ORDER.index(params.methods[n].constraint))
        classes[dataset] = by_objective
    return classes


def seconds_per_step(params, dataset: str, method: str, batch: int, warmup: int, steps: int) -> float:
    """Seconds per step of ``fit`` for ``method`` on ``dataset`` at ``batch`` images, timed between the
    log rows after the warm-up and at the end."""
    base = _settings(params, dataset, method)
    train = {**dataclasses.asdict(base.train), "batch_size": batch, "steps": warmup + steps,
             "log_every": warmup, "checkpoint_every": 10**9}
    settings = _settings(params, dataset, method, train=train)
    channels = 3 if SOURCES[params.datasets[dataset].source].colour else 1
    lr, hr = _data(settings, channels, params.datasets[dataset].hr_size, torch.device("cpu"))
    guides = _guides(settings, params, dataset, channels)
    objective = build_objective(settings, channels, guides)
    sample = image_batch_sampler(lr, hr, batch)
    rows = fit(objective, sample, settings.train, f"{dataset}/{method}", settings.to_dict(), torch.device("cpu"),
               progress=False).rows
    return (rows[-1]["seconds"] - rows[0]["seconds"]) / (rows[-1]["step"] - rows[0]["step"])


def measure(params, batch: int, warmup: int, steps: int, only: list[str] | None) -> list[dict]:
    """One row per run of the paper study: its class's measured time scaled to its batch and steps."""
    rows = []
    for dataset, classes in cost_classes(params).items():
        for objective, names in classes.items():
            label = f"{dataset}:{objective}"
            if only and label not in only and not any(f"{dataset}:{n}" in only for n in names):
                continue
            timed = next((n for n in names if _settings(params, dataset, n).train.steps > 0), None)
            per_step = 0.0
            if timed is not None:
                started = time.perf_counter()
                per_step = seconds_per_step(params, dataset, timed, batch, warmup, steps)
                print(f"  {label:28s} ({timed}) {per_step:8.2f} s/step at batch {batch} "
                      f"[{time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
            for name in names:
                settings = _settings(params, dataset, name)
                configured = settings.train.batch_size
                step = per_step * configured / batch
                rows.append({"dataset": dataset, "method": name, "objective": objective, "timed_as": timed,
                             "constraint": settings.constraint, "batch": configured, "steps": settings.train.steps,
                             "seconds_per_step": step, "cpu_hours": step * settings.train.steps / 3600})
    return rows


def gpu_estimates(rows: list[dict]) -> float | None:
    """Add ``gpu_fp32_hours`` / ``gpu_fast_hours`` (estimates) to ``rows``; returns the CPU img/s of the
    natural pixel step they are scaled by (None: not measured, no estimates)."""
    anchor = next((r for r in rows if r["dataset"] == "natural" and r["objective"] == "pixel"
                   and r["seconds_per_step"] > 0), None)
    if anchor is None:
        return None
    cpu_img_s = anchor["batch"] / anchor["seconds_per_step"]
    for r in rows:
        r["gpu_fp32_hours"] = r["cpu_hours"] * cpu_img_s / H100_FP32
        r["gpu_fast_hours"] = r["cpu_hours"] * cpu_img_s / H100_FAST
    return cpu_img_s


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return {"cpu": model, "nproc": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def markdown(rows: list[dict], info: dict, args, cpu_img_s: float | None) -> str:
    gpu = cpu_img_s is not None
    out = [f"Machine: {info['cpu']}, {info['nproc']} cores, {info['threads']} torch threads, torch {info['torch']}; "
           f"load average {info['load_average'][0]:.2f} at the start, {info['load_average_end'][0]:.2f} at the end. "
           f"Timed: {args.warmup} warm-up + {args.steps} steps per cost class at batch {args.batch}, scaled to the "
           f"configured batch.", ""]
    head = "| data set | run | timed as | batch | steps | s/step (CPU) | CPU hours |"
    rule = "|---|---|---|---|---|---|---|"
    if gpu:
        head += " H100 h fp32 (estimate) | H100 h bf16+cl+compile (estimate) |"
        rule += "---|---|"
    out += [head, rule]
    for r in rows:
        line = (f"| {r['dataset']} | {r['method']} | {r['timed_as'] or '– (0 steps)'} | {r['batch']} | {r['steps']:,} "
                f"| {r['seconds_per_step']:.2f} | {r['cpu_hours']:,.1f} |")
        if gpu:
            line += f" {r['gpu_fp32_hours']:.2f} | {r['gpu_fast_hours']:.2f} |"
        out.append(line)
    out += ["", "| data set | runs | CPU hours | CPU core-hours |" + (" H100 h fp32 (est.) | H100 h fast (est.) |" if gpu else ""),
            "|---|---|---|---|" + ("---|---|" if gpu else "")]
    for dataset in list(dict.fromkeys(r["dataset"] for r in rows)) + ["all"]:
        sel = [r for r in rows if dataset in ("all", r["dataset"])]
        hours = sum(r["cpu_hours"] for r in sel)
        line = f"| {dataset} | {len(sel)} | {hours:,.0f} | {hours * info['threads']:,.0f} |"
        if gpu:
            line += f" {sum(r['gpu_fp32_hours'] for r in sel):.1f} | {sum(r['gpu_fast_hours'] for r in sel):.1f} |"
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--study", default="paper", help="study section to lay over params (default: paper)")
    parser.add_argument("--batch", type=int, default=16, help="timed batch (scaled to the configured one)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per cost class")
    parser.add_argument("--only", nargs="+", help="DATASET:OBJECTIVE or DATASET:METHOD, e.g. natural:gan")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1: see above)")
    parser.add_argument("--markdown", help="write the tables here (they are printed either way)")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--flush-denormal", action="store_true",
                        help="CPU: flush subnormal floats to zero (the pipeline does not: see docs/benchmarks.md)")
    args = parser.parse_args(argv)

    raw = yaml.safe_load(Path(args.params).read_text())
    raw["study"] = args.study
    params = load_params(raw)
    torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    info = machine()
    print(f"{info['cpu']}; {info['nproc']} cores, {info['threads']} threads; torch {info['torch']}; "
          f"load average {info['load_average']}", file=sys.stderr)
    train_step.POOL = 4 * args.batch  # random HR images drawn from: enough for distinct batches
    started = time.perf_counter()
    rows = measure(params, args.batch, args.warmup, args.steps, args.only)
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    info["wall_seconds"] = round(time.perf_counter() - started, 1)
    cpu_img_s = gpu_estimates(rows)
    text = markdown(rows, info, args, cpu_img_s)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows, "cpu_img_s_natural_pixel": cpu_img_s},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
