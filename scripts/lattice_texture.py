"""How much of a 4-px periodic texture a study's outputs carry: the lattice peak ratio, per method.

A 4× upsampler's periodic artefact (the dotted kernel of A⁺ for a narrow Gaussian A, or a sub-pixel
convolution's 16 per-position kernels) repeats every 4 HR pixels, so its power sits at the frequencies
(fy, fx) ∈ {0, ±¼, ½}² other than (0, 0). The ratio is the power there over the power of each such
frequency's 8 neighbouring bins, averaged over the 15 frequencies; the power spectrum is averaged over
images and channels after each image's mean is removed. Texture-free images score ≈ 1–1.5; a visible
4-px lattice scores several times that (docs/choices.md, "Generator upsampling and AffGAN's 4-px texture").

It reports the real HR images and, per trained run, the outputs ŷ and the generator's own output f
(before the projection), on one split of a study's prepared data:

    python scripts/lattice_texture.py studies/cpu --dataset natural --split val
    python scripts/lattice_texture.py . --dataset natural --methods mse affgan softgan
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def lattice_peak_ratio(images: np.ndarray | torch.Tensor) -> float:
    """(n, c, h, w) or (n, h, w) images, h and w multiples of 4 → the 4-px lattice peak ratio (≥ 0, ≈ 1
    for no periodic texture)."""
    y = np.asarray(images, dtype=np.float64)
    if y.ndim == 3:
        y = y[:, None]
    if y.ndim != 4 or y.shape[-1] % 4 or y.shape[-2] % 4:
        raise ValueError(f"expected (n, c, h, w) images with h, w multiples of 4, got shape {y.shape}")
    y = y - y.mean(axis=(-2, -1), keepdims=True)
    power = (np.abs(np.fft.fft2(y)) ** 2).mean(axis=(0, 1))
    h, w = power.shape
    ratios = []
    for fy in range(0, h, h // 4):
        for fx in range(0, w, w // 4):
            if fy == fx == 0:
                continue
            neighbours = [power[(fy + dy) % h, (fx + dx) % w] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
            ratios.append(power[fy, fx] / max(np.mean(neighbours), 1e-30))
    return float(np.mean(ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a study's folder (data/ and runs/ in it), e.g. . or studies/cpu")
    parser.add_argument("--dataset", default="natural")
    parser.add_argument("--split", default="val", help="val (default) or test")
    parser.add_argument("--methods", nargs="*", help="runs to measure (default: every run of the data set)")
    args = parser.parse_args()

    from affsr.data.load import load_split
    from affsr.training.checkpoint import load_model

    torch.set_num_threads(1)
    lr, hr = load_split(args.root / "data" / args.dataset, args.split)
    print(f"{args.dataset} {args.split} ({len(lr)} images): real HR {lattice_peak_ratio(hr):.2f}")
    runs = args.root / "runs" / args.dataset
    for method in args.methods or sorted(p.name for p in runs.iterdir() if (p / "model.pt").is_file()):
        model, _ = load_model(runs / method / "model.pt")
        model.eval()
        with torch.no_grad():
            f, y = model.generator(lr), model(lr)
        print(f"  {method:14s} ŷ {lattice_peak_ratio(y):5.2f}   f {lattice_peak_ratio(f):5.2f}")


if __name__ == "__main__":
    main()
