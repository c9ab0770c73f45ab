"""Where the box study's PSNR gain comes from: the default study's own outputs, left as they are, clipped
to [0, 1], or box-projected at evaluation time, beside the models trained with `projected_box`.

    python scripts/box_postprocess.py [--dataset natural] [--methods affinit affmse ... mse]

For each method: mean PSNR (affsr.evaluation.psnr) on the data set's test split of the default study's run
(runs/<set>/<method>/model.pt) as evaluated (not clipped), clipped, and moved to the nearest image with
A ŷ = x and 0 ≤ ŷ ≤ 1 (affsr.operators.box_projection, `auto`, tol 1e-6, batches of 16); then the PSNR of the box
study's run from studies/box/results/metrics.csv where it has one. Seeded like evaluation (one draw for
noise-input generators). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from affsr.operators.box_projection import project_to_box
from affsr.training.checkpoint import load_model
from affsr.evaluation.distortion import psnr


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="natural")
    parser.add_argument("--methods", nargs="+",
                        default=["affinit", "affmse", "affgan", "affgan_z", "affdg", "affll", "mse"])
    parser.add_argument("--box-metrics", type=Path, default=Path("studies/box/results/metrics.csv"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    test = np.load(Path("data") / args.dataset / "test.npz")
    hr = test["hr"].astype(np.float64) / 255
    x = torch.from_numpy(test["lr"]).double()
    box = (pd.read_csv(args.box_metrics).set_index(["dataset", "method", "metric"])["value"]
           if args.box_metrics.exists() else pd.Series(dtype=float))
    print(f"{args.dataset}, test split, mean PSNR (dB)\n")
    print("| method | as evaluated | clipped | box-projected | trained with the box (study: box) |")
    print("|---|---|---|---|---|")
    for method in args.methods:
        model, _ = load_model(Path("runs") / args.dataset / method / "model.pt")
        torch.manual_seed(0)
        with torch.no_grad():
            y = model(x.float()).double()
        projected = torch.cat([project_to_box(model.op, y[i:i + 16], x[i:i + 16], tol=1e-6, max_iter=100).image
                               for i in range(0, len(x), 16)])
        trained = box.get((args.dataset, method, "psnr"))
        shown = f"{trained:.2f}" if trained is not None and model.constraint != "none" else "–"
        print(f"| {method} | {psnr(y.numpy(), hr):.2f} | {psnr(y.clamp(0, 1).numpy(), hr):.2f} | "
              f"{psnr(projected.numpy(), hr):.2f} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
