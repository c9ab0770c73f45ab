"""The README's "Outputs in range" table: the default study beside `study: box`, for every method the box
study makes `projected_box`.

    python scripts/box_study_table.py [--default .] [--box studies/box] [--methods affmse affgan ...]

For each data set × method: PSNR, lr_mse (consistency, mean (Aŷ − x)²), swd and spectrum_distance from
each study's results/metrics.csv, and the training job's wall seconds and seconds per step from its
results/benchmarks/train/<set>/<method>.tsv and the step count in results/logs/train/<set>/<method>.csv
(both studies ran two jobs at a time on the same 2-core machine, so the ratio is the fair number).
Prints one Markdown table, "default → box" in each cell.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

METRICS = ("psnr", "lr_mse", "swd", "spectrum_distance")


def train_cost(root: Path, dataset: str, method: str) -> tuple[float, float] | None:
    """(wall seconds, seconds per step) of one training job, or None where it did not train."""
    bench = root / "results" / "benchmarks" / "train" / dataset / f"{method}.tsv"
    log = root / "results" / "logs" / "train" / dataset / f"{method}.csv"
    if not bench.exists() or not log.exists():
        return None
    seconds = float(pd.read_csv(bench, sep="\t")["s"].iloc[0])
    steps = pd.read_csv(log)["step"].max() if log.stat().st_size > 10 else 0
    return (seconds, seconds / steps) if steps else None


def cell(before: float | None, after: float | None, fmt: str) -> str:
    show = lambda v: "–" if v is None or pd.isna(v) else format(v, fmt)  # noqa: E731
    return f"{show(before)} → {show(after)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default", type=Path, default=Path("."))
    parser.add_argument("--box", type=Path, default=Path("studies/box"))
    parser.add_argument("--methods", nargs="+", default=["affmse", "affgan", "affgan_z", "affdg", "affll"])
    args = parser.parse_args(argv)
    frames = [pd.read_csv(root / "results" / "metrics.csv").set_index(["dataset", "method", "metric"])["value"]
              for root in (args.default, args.box)]
    print("| data | method | PSNR (dB) | lr_mse | swd | spectrum_distance | train job (s) | s per step |")
    print("|---|---|---|---|---|---|---|---|")
    for dataset in ("grass", "faces", "natural"):
        for method in args.methods:
            values = [[frame.get((dataset, method, m)) for frame in frames] for m in METRICS]
            if all(v[1] is None for v in values):
                continue
            costs = [train_cost(root, dataset, method) for root in (args.default, args.box)]
            seconds = [c[0] if c else None for c in costs]
            per_step = [c[1] if c else None for c in costs]
            print(f"| {dataset} | {method} | {cell(*values[0], '.2f')} | {cell(*values[1], '.1e')} | "
                  f"{cell(*values[2], '.1f')} | {cell(*values[3], '.3f')} | {cell(*seconds, '.1f')} | "
                  f"{cell(*per_step, '.3f')} |")


if __name__ == "__main__":
    main()
