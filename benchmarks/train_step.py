"""Images per second of the pipeline's real training step, per method, beside a plain fp32 eager loop.

    python benchmarks/train_step.py                       # demo sizes (params.yaml), every method
    python benchmarks/train_step.py --study paper --dataset natural --methods mse affgan
    python benchmarks/train_step.py --steps 50 --warmup 10 --device cuda --json out.json
    python benchmarks/train_step.py --options --study paper --dataset natural --methods mse affgan \
        --device cuda --batch 64                          # the train: options, SRResNet 8×64 RGB 32→128

What is timed:
* **pipeline** — ``affsr.training.loop.fit``: the loop ``make study`` runs (batches sliced from a data set kept
  on the device as uint8, the objective's phases, Adam, loss accumulation, logging), for the method's
  objective × constraint built from params.yaml exactly as ``affsr train`` builds it.
* **reference** — a hand-written fp32 eager loop over the *same* networks and losses (the objective's
  phases, one Adam step each), nothing else.
* **projection share** — the MSE step of the generator with ``constraint: projected`` vs ``none``:
  the fraction of the step the affine projection A⁺x + (I − A⁺A)f(x) costs.
* **options** (``--options``, instead of the above) — the pipeline under each ``train:`` option of
  :mod:`affsr.training.accelerate` alone and combined: fp32 eager, bf16, channels_last, compile, all three. One
  ``fit`` per option (so compiling happens once, in its warm-up steps), timed between its log rows.

The data are random uint8 HR images of the data set's size and colour (LR = A·HR, as ``prepare``
makes them); speed does not depend on pixel values. Guided methods (AffDG, AffLL) get untrained
snapshots of their guide network, which cost the same as trained ones. Timings synchronise the device
only at the ends of the timed window. Prints the device name, the torch version, a table, and the
cost of the whole study: measured seconds per step × every run's configured steps.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
import yaml

from affsr.config.study import RunSettings
from affsr.params import load_params, resolve
from affsr.data.load import hr_to_float
from affsr.methods.base import Guide
from affsr.training.build import build_objective, guides_from_snapshots
from affsr.training.batches import image_batch_sampler
from affsr.training.accelerate import pick_device
from affsr.operators.kinds import build_operator
from affsr.training.accelerate import plan
from affsr.training.loop import fit

POOL = 512  # random HR images kept on the device, sliced into batches like the pipeline's data set


def _settings(params, dataset: str, method: str, **overrides) -> RunSettings:
    resolved = resolve(params, dataset, method)
    resolved.update(overrides)
    return RunSettings.parse(resolved)


def _data(settings: RunSettings, channels: int, size: int, device: torch.device):
    """(lr float32, hr uint8) pools on the device, LR = A(HR/255) as in ``affsr prepare``."""
    generator = torch.Generator().manual_seed(0)
    hr = torch.randint(0, 256, (POOL, channels, size, size), dtype=torch.uint8, generator=generator)
    with torch.no_grad():
        lr = build_operator(settings.operator)(hr_to_float(hr).double()).float()
    return lr.to(device), hr.to(device)


def _guides(settings: RunSettings, params, dataset: str, channels: int) -> list[Guide]:
    """Untrained snapshots of the method's guide (same cost as trained ones)."""
    if not settings.guide:
        return []
    aux = _settings(params, dataset, settings.guide)
    template = build_objective(aux, channels)
    (name, network), = template.networks.items()
    points = getattr(template, "snapshot_points", [1.0]) or [1.0]
    labels = [float(template.snapshot_label(p)) if hasattr(template, "snapshot_label") else p for p in points]
    snapshots = [{"label": label, "networks": {name: network.state_dict()}} for label in labels]
    return guides_from_snapshots(snapshots, name, lambda: copy.deepcopy(network))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_pipeline(settings: RunSettings, objective, sample, device, warmup: int, steps: int) -> float:
    """Seconds per step of ``fit`` (the warm-up run first, then a timed run of ``steps``)."""
    cfg = dataclasses.replace(settings.train, steps=warmup, log_every=max(1, warmup), checkpoint_every=10**9)
    fit(objective, sample, cfg, "warmup", settings.to_dict(), device, progress=False)
    cfg = dataclasses.replace(cfg, steps=steps, log_every=settings.train.log_every)
    _sync(device)
    start = time.perf_counter()
    fit(objective, sample, cfg, "timed", settings.to_dict(), device, progress=False)
    _sync(device)
    return (time.perf_counter() - start) / steps


def time_reference(settings: RunSettings, objective, sample, device, warmup: int, steps: int) -> float:
    """Seconds per step of a bare fp32 eager loop over the same phases (networks, losses, Adam)."""
    for net in objective.networks.values():
        net.to(device).train()
    optimisers = {k: torch.optim.Adam(n.parameters(), lr=settings.train.lr,
                                      betas=(settings.train.beta1, settings.train.beta2))
                  for k, n in objective.networks.items()}
    generator = torch.Generator().manual_seed(1)

    def step(i: int, total: int) -> None:
        batch = sample(generator)
        for phase in objective.phases:
            optimisers[phase.network].zero_grad(set_to_none=True)
            phase.loss(batch, i / total).backward()
            optimisers[phase.network].step()

    for i in range(warmup):
        step(i, warmup)
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        step(i, steps)
    _sync(device)
    return (time.perf_counter() - start) / steps


#: name → the train: options of one row of the options table (the rest: off / fp32).
OPTION_SETS = {
    "fp32 eager": {},
    "bf16": {"precision": "bf16"},
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},
    "bf16 + channels_last + compile": {"precision": "bf16", "channels_last": True, "compile": True},
}
#: Warm-up steps at least, for a compiled row.
COMPILE_WARMUP = 6
OFF = {"precision": "fp32", "channels_last": False, "compile": False, "data_on_device": True}


def time_options(settings: RunSettings, objective, lr, hr, device, warmup: int, steps: int) -> float:
    """Seconds per step of one ``fit`` of ``warmup + steps`` steps under ``settings.train``'s options,
    timed between the log rows at step ``warmup`` and at the end (each row reads the losses, which
    waits for the device: the window holds whole steps)."""
    memory_format = plan(settings.train, device).memory_format
    sample = image_batch_sampler(lr, hr, settings.train.batch_size, device, memory_format)
    cfg = dataclasses.replace(settings.train, steps=warmup + steps, log_every=warmup, checkpoint_every=10**9)
    rows = fit(objective, sample, cfg, "options", settings.to_dict(), device, progress=False).rows
    return (rows[-1]["seconds"] - rows[0]["seconds"]) / (cfg.steps - rows[0]["step"])


def options_benchmark(params, dataset: str, methods: list[str], device: torch.device, warmup: int, steps: int,
                      batch: int | None, only: list[str] | None = None) -> list[dict]:
    """img/s of each method under each option set of OPTION_SETS (or those named in ``only``)."""
    ds = params.datasets[dataset]
    from affsr.data.sources import SOURCES

    channels = 3 if SOURCES[ds.source].colour else 1
    rows = []
    for method in methods:
        base = _settings(params, dataset, method)
        for name, options in OPTION_SETS.items():
            if only and name not in only:
                continue
            train = {**dataclasses.asdict(base.train), **OFF, **options}
            if batch:
                train["batch_size"] = batch
            settings = _settings(params, dataset, method, train=train)
            lr, hr = _data(settings, channels, ds.hr_size, device)
            guides = _guides(settings, params, dataset, channels)
            for guide in guides:
                guide.network.to(device)
            # compiling goes on over the first 3–4 steps (the backward, the graphs after a break)
            seconds = time_options(settings, build_objective(settings, channels, guides), lr, hr, device,
                                   max(warmup, COMPILE_WARMUP) if settings.train.compile is True else warmup, steps)
            b = settings.train.batch_size
            rows.append({"method": method, "options": name, "batch": b, "img_s": b / seconds,
                         "seconds_per_step": seconds})
            print(f"  {method:12s} {name:32s} {b / seconds:9.1f} img/s", file=sys.stderr)
    eager = {r["method"]: r["img_s"] for r in rows if r["options"] == "fp32 eager"}
    for r in rows:
        r["speedup"] = r["img_s"] / eager[r["method"]] if r["method"] in eager else None
    return rows


def benchmark(params, dataset: str, methods: list[str], device: torch.device, warmup: int, steps: int) -> list[dict]:
    ds = params.datasets[dataset]
    from affsr.data.sources import SOURCES

    channels = 3 if SOURCES[ds.source].colour else 1
    rows = []
    for method in methods:
        settings = _settings(params, dataset, method)
        lr, hr = _data(settings, channels, ds.hr_size, device)
        sample = image_batch_sampler(lr, hr, settings.train.batch_size)
        guides = _guides(settings, params, dataset, channels)
        for guide in guides:
            guide.network.to(device)
        pipeline = time_pipeline(settings, build_objective(settings, channels, guides), sample, device, warmup, steps)
        reference = time_reference(settings, build_objective(settings, channels, guides), sample, device,
                                   warmup, steps)
        batch = settings.train.batch_size
        rows.append({"method": method, "objective": settings.objective, "constraint": settings.constraint,
                     "batch": batch, "pipeline_img_s": batch / pipeline, "reference_img_s": batch / reference,
                     "ratio": reference / pipeline, "seconds_per_step": pipeline,
                     "configured_steps": settings.train.steps})
        print(f"  {method:16s} pipeline {batch / pipeline:9.1f} img/s   reference {batch / reference:9.1f} img/s",
              file=sys.stderr)
    return rows


def projection_share(params, dataset: str, device, warmup: int, steps: int) -> dict:
    """MSE step with and without the projection layer (same generator, same batch)."""
    ds = params.datasets[dataset]
    from affsr.data.sources import SOURCES

    channels = 3 if SOURCES[ds.source].colour else 1
    times = {}
    for constraint in ("none", "projected"):
        settings = _settings(params, dataset, "mse", constraint=constraint,
                             options={"loss": "l2"}, objective="pixel")
        lr, hr = _data(settings, channels, ds.hr_size, device)
        sample = image_batch_sampler(lr, hr, settings.train.batch_size)
        times[constraint] = time_reference(settings, build_objective(settings, channels), sample, device,
                                           warmup, steps)
    share = (times["projected"] - times["none"]) / times["projected"]
    return {"step_without_s": times["none"], "step_with_s": times["projected"], "projection_share": share}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--study", choices=("demo", "paper"), help="override params' study")
    parser.add_argument("--dataset", default="grass")
    parser.add_argument("--methods", nargs="+", help="default: every method in params")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--flush-denormal", action="store_true",
                        help="CPU: flush subnormal floats to zero (the pipeline does not: see docs/benchmarks.md)")
    parser.add_argument("--batch", type=int, help="batch size (default: the method's train.batch_size)")
    parser.add_argument("--options", action="store_true",
                        help="time the train: options (fp32 eager, bf16, channels_last, compile, all) instead")
    parser.add_argument("--only", nargs="+", choices=list(OPTION_SETS), help="with --options: these only")
    args = parser.parse_args(argv)

    raw = yaml.safe_load(Path(args.params).read_text())
    if args.study:
        raw["study"] = args.study
    params = load_params(raw)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    methods = args.methods or list(params.methods)
    print(f"device: {name}; torch {torch.__version__}; study {params.study}; dataset {args.dataset} "
          f"(hr {params.datasets[args.dataset].hr_size}); warm-up {args.warmup}, timed {args.steps} steps",
          file=sys.stderr)
    if args.options:
        return _print_options(params, args, methods, device, name)
    rows = benchmark(params, args.dataset, methods, device, args.warmup, args.steps)
    share = projection_share(params, args.dataset, device, args.warmup, args.steps)

    print(f"\n# train step, {name}, torch {torch.__version__}, study {params.study}, dataset {args.dataset}\n")
    print("| method | objective × constraint | batch | pipeline img/s | fp32 eager reference img/s | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['objective']} × {r['constraint']} | {r['batch']} | {r['pipeline_img_s']:.1f} "
              f"| {r['reference_img_s']:.1f} | {r['ratio']:.2f} |")
    print(f"\nprojection share of the MSE step: {100 * share['projection_share']:.1f} % "
          f"({1000 * share['step_without_s']:.2f} ms without, {1000 * share['step_with_s']:.2f} ms with)")
    total = sum(r["seconds_per_step"] * r["configured_steps"] for r in rows)
    print(f"training time of these runs at their configured steps on this device: {total / 60:.1f} min "
          f"({total / 3600:.2f} h)")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "torch": torch.__version__, "study": params.study,
                                               "dataset": args.dataset, "rows": rows, "projection": share,
                                               "total_seconds": total}, indent=2))
    return 0


def _print_options(params, args, methods: list[str], device: torch.device, name: str) -> int:
    rows = options_benchmark(params, args.dataset, methods, device, args.warmup, args.steps, args.batch, args.only)
    g = params.generator
    print(f"\n# train: options, {name}, torch {torch.__version__}, study {params.study}, dataset {args.dataset} "
          f"(hr {params.datasets[args.dataset].hr_size}, generator {g.blocks}×{g.width}), "
          f"warm-up {args.warmup}, timed {args.steps} steps\n")
    print("| method | options | batch | img/s | × fp32 eager |")
    print("|---|---|---|---|---|")
    for r in rows:
        speedup = f"{r['speedup']:.2f}" if r["speedup"] else "–"
        print(f"| {r['method']} | {r['options']} | {r['batch']} | {r['img_s']:.1f} | {speedup} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "torch": torch.__version__, "study": params.study,
                                               "dataset": args.dataset, "options": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
