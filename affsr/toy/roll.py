"""The toy's data and operator: a noisy Swiss roll in R², x = A y with A = [½ ½] (paper §5.1)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from affsr.methods.base import Batch

NU1_MEAN, NU1_STD, NU2_STD, RADIUS_SLOPE = 10.0, 3.0, 0.2, 0.4

#: Null-space direction of A = [½ ½]: solution lines are y = A⁺x + t·V.
V = (1.0 / math.sqrt(2.0), -1.0 / math.sqrt(2.0))


def sample_roll(n: int, generator: torch.Generator, noisy: bool = True,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """``n`` Swiss-roll points (n, 2) on the CPU: ν₁ ~ N(10, 3²), ν₂ ~ N(0, 0.2²) (0 if not ``noisy``),
    r = 0.4ν₁ + ν₂, y = [r cos ν₁, r sin ν₁]. The second argument of N in the paper is read as a std."""
    nu1 = NU1_MEAN + NU1_STD * torch.randn(n, generator=generator, dtype=torch.float64)
    radius = RADIUS_SLOPE * nu1
    if noisy:
        radius = radius + NU2_STD * torch.randn(n, generator=generator, dtype=torch.float64)
    return torch.stack([radius * torch.cos(nu1), radius * torch.sin(nu1)], dim=1).to(dtype)


class ToyOperator:
    """A = [½ ½]: y (B, 2) → x (B, 1). A⁺ = [1 1]ᵀ is the exact Moore–Penrose inverse (AAᵀ = ½)."""

    def __call__(self, y: Tensor) -> Tensor:
        if y.ndim != 2 or y.shape[1] != 2:
            raise ValueError(f"ToyOperator: expected y of shape (B, 2), got {tuple(y.shape)}")
        return 0.5 * (y[:, :1] + y[:, 1:])

    def pinv(self, x: Tensor) -> Tensor:
        """A⁺x = [x, x] (A⁺ = Aᵀ(AAᵀ)⁻¹ = [½ ½]ᵀ / ½)."""
        self._check_lr(x)
        return torch.cat([x, x], dim=1)

    def adjoint(self, x: Tensor) -> Tensor:
        """Aᵀx = [x/2, x/2]."""
        self._check_lr(x)
        return torch.cat([0.5 * x, 0.5 * x], dim=1)

    @staticmethod
    def _check_lr(x: Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != 1:
            raise ValueError(f"ToyOperator: expected x of shape (B, 1), got {tuple(x.shape)}")

    def describe(self) -> dict:
        return {"kind": "toy", "matrix": [[0.5, 0.5]]}

    def __repr__(self) -> str:
        return "ToyOperator(A=[0.5 0.5])"


def roll_batch_sampler(batch_size: int, device: torch.device | str = "cpu", members: int = 1):
    """``sample_batch(sampler)`` for :func:`affsr.training.loop.fit`: fresh noisy-roll draws from ``sampler``,
    ``batch_size`` per ensemble member (rows in member blocks); ``hr`` is paired with ``lr`` = A·hr
    (pixel losses), ``hr_unpaired`` is an independent draw (the GAN's real samples)."""
    op = ToyOperator()
    n = batch_size * members

    def sample_batch(sampler: torch.Generator) -> Batch:
        y = sample_roll(n, sampler)
        unpaired = sample_roll(n, sampler)
        return Batch(lr=op(y).to(device), hr=y.to(device), hr_unpaired=unpaired.to(device))

    return sample_batch
