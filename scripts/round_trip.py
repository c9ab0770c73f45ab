"""Round trip downsample → upscale → downsample on 8-bit photos no model saw, for every SR checkpoint.

For each runs/<dataset>/<method>/model.pt whose objective super-resolves (not dae / density_fit): an 8-bit
HR crop from skimage.data (grey: camera, moon, coins; colour: hubble_deep_field, immunohistochemistry,
retina) is downsampled with the checkpoint's A and rounded to 8 bits (what `affsr downsample` writes), upscaled
(tiled model + affine projection, then the box projection unless --no-box), written as 8-bit, downsampled
again and rounded: the table gives max |Δ| between the two 8-bit LR images in grey levels and the seconds
spent in the box projection. Acceptance target (issue 14): max |Δ| ≤ 1 for every checkpoint.

    .venv/bin/python scripts/round_trip.py [--runs runs] [--size 256] [--no-box] [--out table.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch

from affsr.training.checkpoint import load, load_model
from affsr.operators.kinds import build_operator
from affsr.upscale import downsample, project_output, quantise, to_channels, upscale

NOT_SR = ("dae", "density_fit")
GREY = ("camera", "moon", "coins")
COLOUR = ("hubble_deep_field", "immunohistochemistry", "retina")


def photo(name: str, size: int) -> np.ndarray:
    """A centred size × size crop of skimage.data.<name> in [0, 1] (8-bit values k/255)."""
    a = getattr(skimage.data, name)()
    top, left = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
    return a[top:top + size, left:left + size].astype(np.float64) / 255.0


def round_trip(model, op, hr: np.ndarray, box: bool) -> tuple[float, float, bool]:
    """(max |Δ| in grey levels, seconds of the box projection, converged) for one HR image (C, H, W)."""
    x = quantise(downsample(op, hr)[0], 8)
    sr = upscale(model, x)
    seconds, converged = 0.0, True
    if box:
        result = project_output(op, sr, x)
        sr, seconds, converged = result.image[0].numpy(), result.seconds, result.converged
    again = quantise(downsample(op, quantise(sr, 8))[0], 8)
    return 255 * float(np.abs(again - x).max()), seconds, converged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--size", type=int, default=256, help="HR crop side (default 256)")
    parser.add_argument("--no-box", dest="box", action="store_false")
    parser.add_argument("--out", help="also write the table (Markdown) here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = ["| checkpoint | images | max abs Δ (grey levels) | box projection s / image | all converged |",
            "|---|---|---|---|---|"]
    for path in sorted(Path(args.runs).glob("*/*/model.pt")):
        if load(path)[1]["objective"] in NOT_SR:
            continue
        model, settings = load_model(path)
        op = build_operator(settings.operator)
        names = COLOUR if model.generator.channels == 3 else GREY
        results = [round_trip(model, op, to_channels(photo(n, args.size), model.generator.channels)[0], args.box)
                   for n in names]
        rows.append(f"| {path.parent} | {', '.join(names)} | {max(r[0] for r in results):.0f} | "
                    f"{np.mean([r[1] for r in results]):.2f} | {all(r[2] for r in results)} |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    print(f"\n{'with' if args.box else 'without'} box projection, HR {args.size}×{args.size}\n{table}")
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
