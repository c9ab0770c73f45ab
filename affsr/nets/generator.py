"""The SR generator f_θ: a residual conv net on the LR grid, sub-pixel upsampling, a sigmoid output.

The paper states layer counts and widths but not kernel sizes or how f_θ goes from LR to HR size
(paper.md §6). We use the field's standard answer: a residual conv net on the LR grid followed by
sub-pixel (pixel-shuffle) upsampling — SRResNet/ESPCN-like — ending in a sigmoid as the paper's
generators do. Depth and width come from params, so the same code runs the 2-core CPU demo and the
paper-scale GPU study.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from affsr.config.networks import GeneratorConfig
from affsr.operators.interpolation import cubic_upsample


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN with an identity skip (BN + ReLU in every layer, as in the paper)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )

    def forward(self, h: Tensor) -> Tensor:
        return h + self.body(h)


def _upsampler(width: int, scale: int, kind: str = "shuffle") -> nn.Sequential:
    """LR grid → HR grid in ×2 stages for powers of two, one ×scale stage otherwise. ``shuffle``: sub-pixel
    convolution (a conv to factor² × width maps, PixelShuffle; ESPCN/SRResNet); ``resize``: nearest-
    neighbour upsampling then a conv (Odena et al. 2016), which treats every HR pixel alike. Sub-pixel
    convolution gives each of the s² positions within an LR pixel its own kernels, and trained GANs
    turn that into a 4-px periodic texture (docs/choices.md: on the photos, with no projection at all,
    the lattice peak ratio of the outputs is 4.3–7.0 with ``shuffle``, 1.8–1.9 with ``resize``; real
    images 1.7)."""
    if kind not in GeneratorConfig.UPSAMPLERS:
        raise ValueError(f"upsampler must be one of {', '.join(GeneratorConfig.UPSAMPLERS)}, got {kind!r}")
    factors = [2] * int(math.log2(scale)) if scale & (scale - 1) == 0 else [scale]
    layers: list[nn.Module] = []
    for factor in factors:
        if kind == "resize":
            layers += [nn.Upsample(scale_factor=factor, mode="nearest"), nn.Conv2d(width, width, 3, padding=1)]
        else:
            layers += [nn.Conv2d(width, width * factor**2, 3, padding=1), nn.PixelShuffle(factor)]
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """f_θ: LR (B, C, h, w) in [0, 1] → HR (B, C, h·s, w·s) in (0, 1) (sigmoid output).

    ``noise`` > 0 makes it stochastic: that many maps of N(0, 1) noise at LR resolution are drawn anew on
    every call and concatenated to the input, so one LR image has many outputs (the paper's
    variational-inference view, §3.2 / App. A); through the projection every one of them is consistent.

    ``skip`` (the paper does not say how f_θ reaches HR size): the network predicts a residual, in logit
    space, over the cubic upsampling of its input on A's grid (``offset``: HR position of LR pixel 0),
    f = sigmoid(logit(cubic(x)) + r(x)), with r's last layer initialised to 0. Without it an untrained
    projected net outputs A⁺x plus a high-passed random image: with σ = 1 a grid of dots that the
    network must learn to fill in, which 400 CPU steps did not on colour photos. With it training
    starts from a smooth consistent image (projected cubic) and spends its steps on the detail.
    """

    #: cubic(x) is clamped to [ε, 1 − ε] before the logit (ε = 1/512: half an 8-bit level).
    SKIP_EPS = 1.0 / 512

    def __init__(self, channels: int, scale: int, width: int = 32, blocks: int = 4, noise: int = 0,
                 skip: bool = False, offset: tuple[float, float] = (0.0, 0.0), upsampler: str = "shuffle"):
        super().__init__()
        if noise < 0:
            raise ValueError(f"noise must be ≥ 0 maps, got {noise}")
        self.channels, self.noise, self.scale = channels, noise, scale
        self.skip, self.offset = skip, (float(offset[0]), float(offset[1]))
        self.head = nn.Sequential(nn.Conv2d(channels + noise, width, 3, padding=1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        self.up = _upsampler(width, scale, upsampler)
        self.tail = nn.Conv2d(width, channels, 3, padding=1)
        if skip:  # start exactly at the cubic upsampling; the residual grows from zero
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: Tensor) -> Tensor:
        lr = x
        if self.noise:
            z = torch.randn(x.shape[0], self.noise, *x.shape[2:], device=x.device, dtype=x.dtype)
            x = torch.cat([x, z], dim=1)
        h = self.head(x)
        h = h + self.fuse(self.body(h))
        logit = self.tail(self.up(h))
        if self.skip:  # replicate edges: a tile of `affsr upscale` must not wrap around
            base = cubic_upsample(lr, self.scale, self.offset, boundary="replicate")
            logit = logit + torch.logit(base.clamp(self.SKIP_EPS, 1 - self.SKIP_EPS))
        return torch.sigmoid(logit)
