"""The GAN's discriminator D: an HR image → one logit (AffGAN, SoftGAN; paper §3.2, App. D)."""

from __future__ import annotations

from torch import Tensor, nn


class Discriminator(nn.Module):
    """HR image (B, C, H, W) → one logit per image; D(y) = sigmoid(logit).

    One stride-2 3×3 conv + LeakyReLU per entry of ``widths`` (paper, grass: 32/64/128/256), batch norm
    after the first, then global average pooling and a linear layer — so it accepts any HR size.
    """

    def __init__(self, channels: int, widths: tuple[int, ...] | list[int] = (32, 64, 128, 256)):
        super().__init__()
        layers: list[nn.Module] = []
        previous = channels
        for i, width in enumerate(widths):
            layers.append(nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            previous = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(previous, 1)

    def forward(self, y: Tensor) -> Tensor:
        return self.head(self.features(y).mean(dim=(2, 3))).squeeze(1)
