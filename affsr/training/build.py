"""One way to build each thing a run needs from its settings: the SR model, any one network, the objective
in its context, and frozen guides from snapshots.

Training, evaluation, ``upscale``, checkpoint loading, the toy and the benchmarks all build through
these functions, so a setting (say ``generator.width``) is read in exactly one place between the
validated settings and the object it configures. The operator A is built from its settings once per run
(:func:`affsr.operators.build_operator`) and handed in, so data checks and the model share it.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from affsr.config.parse import check_choice, from_dict
from affsr.config.study import RunSettings
from affsr.methods import available_objectives, objective_class, options_class
from affsr.methods.base import Context, Guide
from affsr.nets.denoiser import Denoiser
from affsr.nets.discriminator import Discriminator
from affsr.nets.generator import Generator
from affsr.nets.sr_model import SRModel
from affsr.operators.downsampling import Downsampling
from affsr.operators.interpolation import grid_offset
from affsr.operators.kinds import build_operator


class ImageNetworks:
    """The auxiliary networks of image objectives, sized from a run's settings (the
    :class:`~affsr.methods.base.NetworkFactory` of images). Each method is named as the network it makes,
    which is also the name an objective trains it under (``denoiser``, ``density``, ``discriminator``)."""

    def __init__(self, settings: RunSettings, channels: int):
        self.settings = settings
        self.channels = channels

    def discriminator(self) -> nn.Module:
        return Discriminator(self.channels, self.settings.discriminator.widths)

    def denoiser(self) -> nn.Module:
        cfg = self.settings.denoiser
        return Denoiser(self.channels, width=cfg.width, depth=cfg.depth)

    def density(self) -> nn.Module:
        from affsr.nets.density import DensityModel  # only objectives that need it pay its import

        return DensityModel(self.channels, self.settings.density)


def build_model(settings: RunSettings, channels: int, op: Downsampling | None = None) -> SRModel:
    """The SR model of a run: the generator of the configured size with the method's constraint, on A
    (``op``, built from ``settings.operator`` when not given)."""
    op = op if op is not None else build_operator(settings.operator)
    g = settings.generator
    generator = Generator(channels, op.scale, width=g.width, blocks=g.blocks, noise=g.noise, skip=g.skip,
                          offset=grid_offset(op), upsampler=g.upsampler)
    return SRModel(generator, op, settings.constraint)


def build_network(settings: RunSettings, channels: int, name: str, op: Downsampling | None = None) -> nn.Module:
    """One network of a run by the name its objective trains it under: ``generator`` (the SR model) or
    one of :class:`ImageNetworks` — what loading a checkpoint needs, without building the rest of the
    objective or touching the RNG's seed (its weights are loaded next)."""
    if name == "generator":
        return build_model(settings, channels, op)
    make = {"discriminator": ImageNetworks.discriminator, "denoiser": ImageNetworks.denoiser,
            "density": ImageNetworks.density}.get(name)
    if make is None:
        raise KeyError(f"no network '{name}' (generator, discriminator, denoiser or density)")
    return make(ImageNetworks(settings, channels))


def objective_in(context: Context, objective: str, where: str = "settings.objective"):
    """Objective ``objective`` built on ``context`` (images or the toy alike)."""
    check_choice(objective, available_objectives(), where)
    return objective_class(objective)(context)


def build_objective(settings: RunSettings, channels: int, guides: list[Guide] | None = None,
                    op: Downsampling | None = None):
    """Seeded construction of the model and the method's objective, for training: the initial weights
    depend only on ``settings.seed``."""
    torch.manual_seed(settings.seed)
    check_choice(settings.objective, available_objectives(), "settings.objective")
    context = Context(
        model=build_model(settings, channels, op),
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
