"""Consistency with the LR input: how far Aŷ is from x — the paper's ℓ_MSE(x, Aŷ) (Table 2) and two
scale-free forms of it.

Computed in float64 (A applied in float64 to the float64-cast outputs), so the metric adds no round-off of
its own: the paper's projected models reach ~1e-10, ours float32 round-off, ~1e-15.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from affsr.evaluation.arrays import CHUNK, ArrayLike, as_float64_tensor, check_4d

LR_PSNR_CAP = 400.0  # dB; lr_mse is floored at 10^(−40) so that an exactly consistent output stays finite


def _lr_residual_sums(sr: ArrayLike, lr: ArrayLike, op: Any) -> tuple[float, float, int]:
    """(Σ (Aŷ − x)², Σ x², number of LR values), all accumulated in float64."""
    y, x = as_float64_tensor(sr), as_float64_tensor(lr)
    check_4d("sr", y)
    check_4d("lr", x)
    expected = (x.shape[0], x.shape[1], x.shape[2] * int(op.scale), x.shape[3] * int(op.scale))
    if tuple(y.shape) != expected:
        raise ValueError(f"sr shape {tuple(y.shape)} does not match lr shape {tuple(x.shape)} at scale {op.scale}")
    err = 0.0
    with torch.no_grad():
        for s in range(0, y.shape[0], CHUNK):
            err += float(((op(y[s : s + CHUNK]) - x[s : s + CHUNK]) ** 2).sum())
    return err, float((x**2).sum()), x.numel()


def lr_mse(sr: ArrayLike, lr: ArrayLike, op: Any) -> float:
    """The paper's consistency error ℓ_MSE(x, Aŷ) = mean over all LR pixels (all images, channels) of (x − Aŷ)².

    sr (N, C, H, W), lr (N, C, H/s, W/s), both on the [0, 1] scale. sr and lr are cast to float64 and A is
    applied in float64, so the metric adds no round-off of its own: an output made consistent in float64
    scores ~1e-30, a float32 projected output ~1e-15 (its own float32 round-off). Range [0, ∞); 0 = consistent.
    """
    err, _, n = _lr_residual_sums(sr, lr, op)
    return err / n if n else float("nan")


def lr_rel(sr: ArrayLike, lr: ArrayLike, op: Any) -> float:
    """Relative consistency error ‖Aŷ − x‖_F / ‖x‖_F over the whole set, float64. Range [0, ∞); scale-free."""
    err, norm2, _ = _lr_residual_sums(sr, lr, op)
    return float(np.sqrt(err) / np.sqrt(norm2)) if norm2 > 0 else float("nan")


def lr_psnr_from_mse(mse: float) -> float:
    """10·log10(1 / mse) dB, capped at LR_PSNR_CAP (see :func:`lr_psnr`)."""
    if np.isnan(mse):
        return float("nan")
    return float(min(LR_PSNR_CAP, -10.0 * np.log10(max(mse, 10.0 ** (-LR_PSNR_CAP / 10)))))


def lr_psnr(sr: ArrayLike, lr: ArrayLike, op: Any) -> float:
    """Consistency as a PSNR on the LR grid: 10·log10(1 / lr_mse) in dB (data range 1), pooled over the set.

    The measure of the NTIRE 2021/2022 "Learning the Super-Resolution Space" challenges, where ≥ 45 dB
    counts as consistent with the LR input. Range (−∞, 400] dB, higher = more consistent. An exactly
    consistent output (lr_mse = 0) gets the cap LR_PSNR_CAP = 400 dB rather than inf, so CSV and JSON stay
    plain numbers; float64 round-off alone gives ≈ 300–320 dB (A⁺x here), float32 ≈ 140–160 dB (a projected
    network's output). sr (N, C, H, W), lr (N, C, H/s, W/s) on [0, 1], as :func:`lr_mse`.
    """
    return lr_psnr_from_mse(lr_mse(sr, lr, op))
