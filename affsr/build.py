"""One way to build each thing a run needs, from its settings: the device, the SR model, the objective in
its context, frozen guides from snapshots, and image batches (the operator A: :func:`affsr.operators.
build_operator`, which the data preparation uses without the networks).

Training, evaluation, ``upscale``, checkpoint loading, the toy and the benchmarks all build through
these functions, so a setting (say ``operator.sigma``) is read in exactly one place between the
validated settings and the object it configures.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from affsr.config import RunSettings
from affsr.data import hr_to_float
from affsr.errors import ConfigError
from affsr.methods import available_objectives, objective_class, options_class
from affsr.methods.base import Batch, Context, Guide
from affsr.nets import Generator, ImageNetworks, SRModel
from affsr.operators import build_operator, grid_offset
from affsr.parse import check_choice, from_dict


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def build_model(settings: RunSettings, channels: int) -> SRModel:
    """The SR model of a run: generator of the configured size with the method's constraint."""
    g, op = settings.generator, build_operator(settings.operator)
    generator = Generator(channels, op.scale, width=g.width, blocks=g.blocks, noise=g.noise, skip=g.skip,
                          offset=grid_offset(op))
    return SRModel(generator, op, settings.constraint)


def objective_in(context: Context, objective: str, where: str = "settings.objective"):
    """Objective ``objective`` built on ``context`` (images or the toy alike)."""
    check_choice(objective, available_objectives(), where)
    return objective_class(objective)(context)


def build_objective(settings: RunSettings, channels: int, guides: list[Guide] | None = None):
    """Seeded construction of the model and the method's objective (weights depend only on the seed)."""
    torch.manual_seed(settings.seed)
    check_choice(settings.objective, available_objectives(), "settings.objective")
    context = Context(
        model=build_model(settings, channels),
        options=from_dict(options_class(settings.objective), settings.options, "settings.options"),
        consistency_weight=settings.consistency_weight,
        nets=ImageNetworks(settings, channels),
        guides=list(guides or []),
    )
    return objective_in(context, settings.objective)


def guides_from_snapshots(snapshots: Iterable[dict], name: str, make_network: Callable[[], nn.Module],
                          device: torch.device | str = "cpu") -> list[Guide]:
    """Frozen guides (eval mode, no gradients) from a run's snapshots of its network ``name``, in the
    order taken (the curriculum order), each labelled as the objective labelled it (e.g. its σ)."""
    guides = []
    for snap in snapshots:
        network = make_network()
        network.load_state_dict(snap["networks"][name])
        guides.append(Guide(label=float(snap["label"]), network=network.to(device).eval().requires_grad_(False)))
    return guides


def image_batch_sampler(lr: torch.Tensor, hr_bytes: torch.Tensor, batch_size: int,
                        device: torch.device | str | None = None,
                        memory_format: torch.memory_format | None = None) -> Callable[[torch.Generator], Batch]:
    """``sample_batch(sampler)`` for :func:`affsr.train.fit` over one split: lr (N, C, h, w) float,
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
