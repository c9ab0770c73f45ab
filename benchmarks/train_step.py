"""Images per second of the pipeline's real training step, per method, beside a plain fp32 eager loop.

    python benchmarks/train_step.py                       # demo sizes (params.yaml), every method
    python benchmarks/train_step.py --study paper --dataset natural --methods mse affgan
    python benchmarks/train_step.py --steps 50 --warmup 10 --device cuda --json out.json

What is timed:
* **pipeline** — ``affsr.train.fit``: the loop ``make study`` runs (batches sliced from a data set kept
  on the device as uint8, the objective's phases, Adam, loss accumulation, logging), for the method's
  objective × constraint built from params.yaml exactly as ``affsr train`` builds it.
* **reference** — a hand-written fp32 eager loop over the *same* networks and losses (the objective's
  phases, one Adam step each), nothing else.
* **projection share** — the MSE step of the generator with ``constraint: projected`` vs ``none``:
  the fraction of the step the affine projection A⁺x + (I − A⁺A)f(x) costs.

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

from affsr.config import RunSettings
from affsr.params import load_params, resolve
from affsr.data import hr_to_float
from affsr.methods.base import Guide
from affsr.build import build_objective, guides_from_snapshots, image_batch_sampler, pick_device
from affsr.operators import build_operator
from affsr.train import fit

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


def benchmark(params, dataset: str, methods: list[str], device: torch.device, warmup: int, steps: int) -> list[dict]:
    ds = params.datasets[dataset]
    from affsr.sources import SOURCES

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
    from affsr.sources import SOURCES

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
    args = parser.parse_args(argv)

    raw = yaml.safe_load(Path(args.params).read_text())
    if args.study:
        raw["study"] = args.study
    params = load_params(raw)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    methods = args.methods or list(params.methods)
    print(f"device: {name}; torch {torch.__version__}; study {params.study}; dataset {args.dataset} "
          f"(hr {params.datasets[args.dataset].hr_size}); warm-up {args.warmup}, timed {args.steps} steps",
          file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
