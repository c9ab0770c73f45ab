"""Training batches of images: paired (LR, HR) and unpaired HR draws from one prepared split, seeded."""

from __future__ import annotations

from typing import Callable

import torch

from affsr.data.load import hr_to_float
from affsr.methods.base import Batch


def image_batch_sampler(lr: torch.Tensor, hr_bytes: torch.Tensor, batch_size: int,
                        device: torch.device | str | None = None,
                        memory_format: torch.memory_format | None = None) -> Callable[[torch.Generator], Batch]:
    """``sample_batch(sampler)`` for :func:`affsr.training.loop.fit` over one split: lr (N, C, h, w) float,
    hr_bytes (N, C, H, W) uint8 (converted to [0, 1] per batch).
    ``batch_size`` paired indices, then as many independent ones for ``hr_unpaired`` (the GAN's real
    images), drawn with the seeded CPU generator ``sampler`` (part of the resume state), so a run draws
    the same batches on any device. Batches are sliced where the split is and land on ``device``
    (default: there); indices and batches go up to a GPU through pinned memory, so that no copy waits
    for the GPU (no host-device synchronisation per batch).
    ``memory_format``: e.g. ``torch.channels_last`` for the batches (default: as sliced)."""
    n, where = len(hr_bytes), hr_bytes.device
    device = torch.device(device) if device is not None else where

    def indices(sampler: torch.Generator) -> torch.Tensor:
        pick = torch.randint(n, (batch_size,), generator=sampler)
        if where.type == "cuda":
            return pick.pin_memory().to(where, non_blocking=True)
        return pick.to(where)

    def place(t: torch.Tensor) -> torch.Tensor:
        if t.device != device:
            t = t.pin_memory() if t.device.type == "cpu" and device.type == "cuda" else t
            t = t.to(device, non_blocking=True)
        return t if memory_format is None else t.contiguous(memory_format=memory_format)

    def sample_batch(sampler: torch.Generator) -> Batch:
        pick, unpaired = indices(sampler), indices(sampler)
        return Batch(lr=place(lr[pick]), hr=place(hr_to_float(place(hr_bytes[pick]))),
                     hr_unpaired=place(hr_to_float(place(hr_bytes[unpaired]))))

    return sample_batch
