"""The held-out cross-entropy metric: bits/dim of a set of images under a trained density model.

The density model (:class:`affsr.nets.density.DensityModel`) is trained on a split no method saw; this
module scores outputs (and the real test images) under it, in chunks sized by memory.
"""

from __future__ import annotations

import torch
from torch import Tensor

from affsr.nets.density import DensityModel
from affsr.nets.density import dequantize as _dequantize

#: Memory one scoring chunk may take (bytes): what :func:`cross_entropy` sizes its chunks by.
SCORING_BYTES = 4 << 30


def chunk_size(model: DensityModel, height: int, width: int, largest: int = 256) -> int:
    """Images per scoring chunk: ``largest``, or fewer where the head's outputs would exceed
    :data:`SCORING_BYTES`. Per pixel the model holds its features and, per mixture component, a mean and
    a scale per channel, the couplings and the gating terms, several times over in the mixture's
    log-sum-exp (× 7: measured, 209 MB per image for the paper's model — 64 wide, 32 components — on 128²
    colour, so 256 images at once would need ≈ 53 GB of GPU memory); the demo's 32² grey: ≈ 1 MB."""
    c, k = model.channels, model.components
    per_pixel = 2 * model.first.out_channels + k * (2 * c + 1 + c * (c - 1) // 2) + model.n_features
    per_image = 4 * height * width * per_pixel * 7  # float32, × 7 intermediates (measured)
    return int(max(1, min(largest, SCORING_BYTES // per_image)))


@torch.no_grad()
def cross_entropy(
    model: DensityModel, images: Tensor, batch_size: int | None = None, dequantize: bool = False, seed: int = 0
) -> float:
    """Mean cross-entropy in bits/dim (lower = more likely) of ``images`` (N, C, H, W) in [0, 1] under ``model``.

    Scored in chunks of ``batch_size`` (default :func:`chunk_size`) on the model's device. ``dequantize=True`` (for real 8-bit HR
    images) adds the noise of :func:`dequantize`, drawn from a CPU generator seeded with ``seed`` so the
    number is reproducible; leave it False for continuous SR outputs.
    """
    if len(images) == 0:
        raise ValueError("cross_entropy: no images to score")
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    batch_size = batch_size or chunk_size(model, *images.shape[-2:])
    total = 0.0
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size].detach().cpu().float()
        if dequantize:
            chunk = _dequantize(chunk, generator)
        total += model.cross_entropy_bits(chunk.to(device)).double().sum().item()
    return total / len(images)
