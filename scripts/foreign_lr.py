"""An LR image made by another tool: PIL's antialiased bicubic reduction (what `Image.resize(BICUBIC)` and
MATLAB's `imresize` do). Super-resolve it with a trained checkpoint twice — once assuming the checkpoint's
own A (the study's Gaussian), once with `--operator bicubic` — and measure what each output is worth:
PSNR against the true HR image, and whether the other tool, reducing the output again, gives back the LR
image (max |Δ| in grey levels). README, "Your own images".

    python scripts/foreign_lr.py --checkpoint runs/grass/affgan/model.pt
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="runs/grass/affgan/model.pt")
    parser.add_argument("--scale", type=int, default=4)
    args = parser.parse_args()
    hr = data.camera()[:256, 128:384]  # 8-bit grey, in no training set
    h, w = hr.shape[0] // args.scale, hr.shape[1] // args.scale
    reduce = lambda a: np.asarray(Image.fromarray(a).resize((w, h), Image.BICUBIC))  # noqa: E731
    lr = reduce(hr)
    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(lr).save(Path(tmp) / "lr.png")
        print(f"HR {hr.shape[1]}×{hr.shape[0]} camera crop, LR by PIL BICUBIC ×{args.scale}; {args.checkpoint}")
        for label, extra in (("checkpoint's A (Gaussian)", []), ("--operator bicubic, circular", ["--operator", "bicubic", "--boundary", "circular"]),
                             ("--operator bicubic (reflect)", ["--operator", "bicubic"])):
            out = Path(tmp) / "sr.png"
            run = subprocess.run([sys.executable, "-m", "affsr", "upscale", str(Path(tmp) / "lr.png"), str(out),
                                  "--checkpoint", args.checkpoint, *extra], capture_output=True, text=True)
            if run.returncode:
                raise SystemExit(run.stderr)
            sr = np.asarray(Image.open(out))
            psnr = 10 * np.log10(255.0**2 / np.mean((sr.astype(float) - hr) ** 2))
            delta = np.abs(reduce(sr).astype(int) - lr)
            inner = delta[2:-2, 2:-2].max()  # PIL clamps at the border, A wraps around (circular)
            print(f"  {label:28s} PSNR {psnr:5.2f} dB; PIL-reduced output vs LR: max |Δ| {delta.max()} grey "
                  f"levels, {inner} away from a 2-pixel LR border")


if __name__ == "__main__":
    main()
