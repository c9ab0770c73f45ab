"""The settings of the networks: the generator f_θ, the discriminator, the denoiser and the density model
(params.yaml `generator:`, `discriminator:`, `denoiser:`, `density:`), each checking its own ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

from affsr.config.parse import check_one_of as _one_of
from affsr.config.parse import check_ranges as _check


@dataclass(frozen=True)
class GeneratorConfig:
    """Residual conv net on the LR grid + sub-pixel upsampling (SRResNet/ESPCN-like)."""

    width: int = 32
    blocks: int = 4
    noise: int = 0  # maps of N(0, 1) noise concatenated to the LR input: > 0 = a stochastic generator
    skip: bool = False  # predict a residual over the cubic upsampling of the input (see nets.Generator)
    #: LR → HR: shuffle (sub-pixel conv, PixelShuffle) or resize (nearest-neighbour upsampling + conv)
    upsampler: str = "shuffle"

    UPSAMPLERS = ("shuffle", "resize")  # not a field: no annotation

    def __post_init__(self) -> None:
        _check(self, at_least_one=("width",), non_negative=("blocks", "noise"), counts=("width", "blocks", "noise"))
        _one_of(self.upsampler, "upsampler", self.UPSAMPLERS)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Strided conv net; one stride-2 layer per entry of ``widths`` (paper, grass: 32/64/128/256)."""

    widths: tuple[int, ...] = (32, 64, 128, 256)

    def __post_init__(self) -> None:
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths: must be a non-empty list of sizes ≥ 1, got {list(self.widths)}")
        _check(self, counts=("widths",))


@dataclass(frozen=True)
class DenoiserConfig:
    """The denoising auto-encoder of AffDG/SoftDG (paper, grass: 4 conv layers × 128 maps)."""

    width: int = 64
    depth: int = 4

    def __post_init__(self) -> None:
        _check(self, at_least_one=("width", "depth"), counts=("width", "depth"))


@dataclass(frozen=True)
class DensityConfig:
    """The PixelCNN-like density model with a continuous mixture head (paper, grass: 4 masked conv
    layers × 64 maps, kernel 5, first 7; MCGSM with 32 components and 32 quadratic features)."""

    width: int = 32
    layers: int = 4
    kernel: int = 5
    first_kernel: int = 7
    components: int = 8
    features: int = 8

    def __post_init__(self) -> None:
        _check(self, at_least_one=("width", "layers", "kernel", "first_kernel", "components"),
               non_negative=("features",),  # 0 features: plain softmax gating
               counts=("width", "layers", "kernel", "first_kernel", "components", "features"))
        for key in ("kernel", "first_kernel"):  # a masked conv is centred on its pixel (affsr.nets.density)
            if getattr(self, key) % 2 == 0:
                raise ValueError(f"{key}: must be odd (the causal mask is centred on its pixel), "
                                 f"got {getattr(self, key)}")
