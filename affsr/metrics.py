"""Evaluation metrics and reference (non-learned) SR outputs.

Conventions shared by every function here:

* Images are (N, C, H, W) torch tensors or numpy arrays with pixel values on the [0, 1] scale
  (``data_range = 1``); C = 1 (grey) or 3 (RGB). No colour conversion is done: metrics are computed on the
  channels as given (the paper does not say which colour space it used for PSNR/SSIM).
* No border is cropped. A is modelled with a circular boundary, so border pixels of an SR output are as
  legitimate (and as constrained by x) as interior ones; the paper does not state a crop either.
* SR outputs are **not clipped** to [0, 1]. Clipping would change Aŷ and so break exact consistency
  (x = Aŷ) of projected outputs; projected outputs (and A⁺x, bicubic) can legitimately leave [0, 1]
  slightly, and PSNR/SSIM are computed on those values as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = [
    "REFERENCE_NAMES",
    "lr_mse",
    "lr_rel",
    "psnr",
    "ssim",
    "bicubic",
    "reference_outputs",
    "all_metrics",
]

REFERENCE_NAMES: tuple[str, ...] = ("bicubic", "pinv")
_CHUNK = 256  # images per operator call in the consistency metrics (bounds float64 memory)

ArrayLike = Any  # torch.Tensor | np.ndarray


def _to_torch64(a: ArrayLike) -> torch.Tensor:
    """Detached float64 CPU tensor copy-or-view of a tensor / array."""
    if isinstance(a, torch.Tensor):
        return a.detach().to(device="cpu", dtype=torch.float64)
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def _to_numpy64(a: ArrayLike) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().to(torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _check_4d(name: str, a: Any) -> None:
    if len(a.shape) != 4:
        raise ValueError(f"{name} must be (N, C, H, W), got shape {tuple(a.shape)}")


def _lr_residual_sums(sr: ArrayLike, lr: ArrayLike, op: Any) -> tuple[float, float, int]:
    """(Σ (Aŷ − x)², Σ x², number of LR values), all accumulated in float64."""
    y, x = _to_torch64(sr), _to_torch64(lr)
    _check_4d("sr", y)
    _check_4d("lr", x)
    expected = (x.shape[0], x.shape[1], x.shape[2] * int(op.scale), x.shape[3] * int(op.scale))
    if tuple(y.shape) != expected:
        raise ValueError(f"sr shape {tuple(y.shape)} does not match lr shape {tuple(x.shape)} at scale {op.scale}")
    err = 0.0
    with torch.no_grad():
        for s in range(0, y.shape[0], _CHUNK):
            err += float(((op(y[s : s + _CHUNK]) - x[s : s + _CHUNK]) ** 2).sum())
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


def _per_image(sr: ArrayLike, hr: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 numpy (N, H, W, C), shape-checked."""
    a, b = _to_numpy64(sr), _to_numpy64(hr)
    _check_4d("sr", a)
    _check_4d("hr", b)
    if a.shape != b.shape:
        raise ValueError(f"sr shape {a.shape} does not match hr shape {b.shape}")
    return a.transpose(0, 2, 3, 1), b.transpose(0, 2, 3, 1)


def psnr(sr: ArrayLike, hr: ArrayLike) -> float:
    """Mean over images of skimage ``peak_signal_noise_ratio(hr, sr, data_range=1.0)``, in dB.

    Per image over all pixels and channels as given (RGB or grey, no colour conversion, no border crop),
    sr not clipped. An image identical to its HR has PSNR = inf, and then so does the mean.
    """
    a, b = _per_image(sr, hr)
    with np.errstate(divide="ignore"):
        values = [peak_signal_noise_ratio(b[i], a[i], data_range=1.0) for i in range(len(a))]
    return float(np.mean(values)) if values else float("nan")


def ssim(sr: ArrayLike, hr: ArrayLike) -> float:
    """Mean over images of skimage ``structural_similarity(hr, sr, data_range=1.0)``; range [−1, 1], 1 = identical.

    skimage defaults: uniform 7×7 window, sample covariance, K1 = 0.01, K2 = 0.03 (the paper gives none of
    these; our patches are ≥ 32 px so the window fits). Colour images use ``channel_axis`` (mean of per-channel
    SSIM); grey images are 2-D. No colour conversion, no border crop, sr not clipped.
    """
    a, b = _per_image(sr, hr)
    values = []
    for i in range(len(a)):
        if a.shape[-1] == 1:
            values.append(structural_similarity(b[i, ..., 0], a[i, ..., 0], data_range=1.0))
        else:
            values.append(structural_similarity(b[i], a[i], data_range=1.0, channel_axis=-1))
    return float(np.mean(values)) if values else float("nan")


def bicubic(lr: ArrayLike, scale: int) -> torch.Tensor:
    """Bicubic upsampling reference: (N, C, h, w) → (N, C, h·s, w·s), F.interpolate(mode="bicubic",
    align_corners=False), not clipped (may overshoot [0, 1] near edges). Keeps a float input's dtype."""
    x = lr if isinstance(lr, torch.Tensor) else torch.from_numpy(np.asarray(lr))
    _check_4d("lr", x)
    if not x.is_floating_point():
        x = x.to(torch.float32)
    h, w = x.shape[-2:]
    with torch.no_grad():
        return F.interpolate(x.detach(), size=(h * int(scale), w * int(scale)), mode="bicubic", align_corners=False)


def reference_outputs(name: str, lr: ArrayLike, op: Any) -> torch.Tensor:
    """A non-learned SR output for the LR batch: "bicubic" (bicubic upsampling by op.scale) or "pinv" (A⁺x).

    Returned as float64 (N, C, H, W): computed in float64 so that A⁺x's consistency error reflects the
    operator, not float32 round-off.
    """
    if name not in REFERENCE_NAMES:
        raise ValueError(f"unknown reference output {name!r}; allowed names: {', '.join(REFERENCE_NAMES)}")
    x = _to_torch64(lr)
    _check_4d("lr", x)
    if name == "bicubic":
        return bicubic(x, int(op.scale))
    with torch.no_grad():
        return op.pinv(x)


def all_metrics(sr: ArrayLike, lr: ArrayLike, hr: ArrayLike, op: Any) -> dict[str, float]:
    """{"lr_mse", "lr_rel", "psnr", "ssim"} for one set of SR outputs (see the individual functions)."""
    return {
        "lr_mse": lr_mse(sr, lr, op),
        "lr_rel": lr_rel(sr, lr, op),
        "psnr": psnr(sr, hr),
        "ssim": ssim(sr, hr),
    }
