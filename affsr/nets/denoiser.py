"""The denoising auto-encoder whose output AffDG and SoftDG turn into a score (paper §3.3, Eq. 12)."""

from __future__ import annotations

from torch import Tensor, nn


class Denoiser(nn.Module):
    """Denoising auto-encoder D(ỹ) for HR images (paper, grass: 4 conv layers × 128 maps).

    Residual form D(ỹ) = ỹ + r(ỹ), so that (D(ỹ) − ỹ)/σ² — the score estimate of AffDG (Eq. 12) — is the
    network's own output scaled, not a small difference of two large numbers. Convs keep the size;
    replicate padding, because zero padding reads as a dark frame that the score would push against.
    """

    def __init__(self, channels: int, width: int = 64, depth: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        previous = channels
        for _ in range(depth - 1):
            layers += [nn.Conv2d(previous, width, 3, padding=1, padding_mode="replicate"), nn.ReLU(inplace=True)]
            previous = width
        layers.append(nn.Conv2d(previous, channels, 3, padding=1, padding_mode="replicate"))
        self.residual = nn.Sequential(*layers)

    def forward(self, y: Tensor) -> Tensor:
        return y + self.residual(y)
