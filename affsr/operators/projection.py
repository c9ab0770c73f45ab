"""The affine projection layer of the paper (Eq. 7): ŷ = A⁺x + (I − A⁺A) f, so that A ŷ = x exactly."""

from __future__ import annotations

import torch
from torch import Tensor

from affsr.operators.downsampling import Downsampling


class AffineProjection(torch.nn.Module):
    """Eq. 7: g = A⁺x + (I − A⁺A) f, so that A g = x exactly (x in the range of A)."""

    def __init__(self, op: Downsampling):
        super().__init__()
        self.op = op

    def forward(self, f: Tensor, x: Tensor) -> Tensor:
        """f: (B, C, H, W) raw HR output; x: (B, C, H/s, W/s) LR input -> (B, C, H, W)."""
        self.op._check_4d(f, "HR input f")
        self.op._check_4d(x, "LR input x")
        expected = self.op.lr_shape(tuple(f.shape))
        if tuple(x.shape) != expected:
            raise ValueError(
                f"LR shape {tuple(x.shape)} does not match HR shape {tuple(f.shape)} at scale {self.op.scale} "
                f"(expected {expected})"
            )
        # One pinv on (x − A f) instead of two: A⁺x − A⁺A f = A⁺(x − A f) by linearity.
        return f + self.op.pinv(x - self.op(f))
