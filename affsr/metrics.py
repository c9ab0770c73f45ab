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
from skimage.metrics import structural_similarity

from affsr.config import REFERENCES
from affsr.operators import cubic_upsample, grid_offset

__all__ = [
    "REFERENCE_NAMES",
    "lr_mse",
    "lr_rel",
    "lr_psnr",
    "psnr",
    "ssim",
    "bicubic",
    "reference_outputs",
    "all_metrics",
]

REFERENCE_NAMES: tuple[str, ...] = REFERENCES  # one list, in affsr.config (params validates it)
LR_PSNR_CAP = 400.0  # dB; lr_mse is floored at 10^(−40) so that an exactly consistent output stays finite
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


def _lr_psnr_from_mse(mse: float) -> float:
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
    return _lr_psnr_from_mse(lr_mse(sr, lr, op))


def _per_image(sr: ArrayLike, hr: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 numpy (N, H, W, C), shape-checked."""
    a, b = _to_numpy64(sr), _to_numpy64(hr)
    _check_4d("sr", a)
    _check_4d("hr", b)
    if a.shape != b.shape:
        raise ValueError(f"sr shape {a.shape} does not match hr shape {b.shape}")
    return a.transpose(0, 2, 3, 1), b.transpose(0, 2, 3, 1)


def psnr(sr: ArrayLike, hr: ArrayLike) -> float:
    """Mean over images of 10·log₁₀(1 / MSE(sr, hr)), in dB: skimage's
    ``peak_signal_noise_ratio(hr, sr, data_range=1.0)`` (tested equal), computed here because importing
    that function loads scipy.stats (≈ 1 s in each of the study's ≈ 50 evaluation processes).

    Per image over all pixels and channels as given (RGB or grey, no colour conversion, no border crop),
    sr not clipped. An image identical to its HR has PSNR = inf, and then so does the mean.
    """
    a, b = _per_image(sr, hr)
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(1.0 / mse)
    return float(np.mean(values)) if len(values) else float("nan")


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


def bicubic(lr: ArrayLike, scale: int, offset: float | tuple[float, float] = 0.0) -> torch.Tensor:
    """Bicubic upsampling reference on A's grid: (N, C, h, w) → (N, C, h·s, w·s), not clipped.

    LR pixel i sits on HR pixel s·i + offset (rows, columns; a pair for different offsets), which for the
    centred Gaussian A of this study is s·i itself (offset 0): HR pixel j is sampled at LR coordinate
    u = j/s with Keys' cubic convolution, a = −0.75 (PyTorch's and OpenCV's choice; MATLAB's imresize uses
    −0.5), from the 4 LR pixels floor(u) − 1 … floor(u) + 2, wrapping around circularly like A. At j = s·i
    it returns x_i exactly. (F.interpolate(align_corners=False) instead assumes offset (s − 1)/2, the grid of
    a box filter, 1.5 HR px off for s = 4; that is what :func:`reference_outputs` passes for the box A.)
    May overshoot [0, 1] near edges. Keeps a float input's dtype (float64 in → float64 out); integer input
    becomes float32.
    """
    x = lr if isinstance(lr, torch.Tensor) else torch.from_numpy(np.asarray(lr))
    _check_4d("lr", x)
    if not x.is_floating_point():
        x = x.to(torch.float32)
    oy, ox = (offset, offset) if np.isscalar(offset) else offset
    with torch.no_grad():
        return cubic_upsample(x.detach(), int(scale), (float(oy), float(ox)), boundary="circular")


def reference_outputs(name: str, lr: ArrayLike, op: Any) -> torch.Tensor:
    """A non-learned SR output for the LR batch: "bicubic" (bicubic upsampling by op.scale on A's sampling
    grid, see :func:`bicubic`) or "pinv" (A⁺x).

    Returned as float64 (N, C, H, W): computed in float64 so that A⁺x's consistency error reflects the
    operator, not float32 round-off.
    """
    if name not in REFERENCE_NAMES:
        raise ValueError(f"unknown reference output {name!r}; allowed names: {', '.join(REFERENCE_NAMES)}")
    x = _to_torch64(lr)
    _check_4d("lr", x)
    if name == "bicubic":
        return bicubic(x, int(op.scale), offset=grid_offset(op))
    with torch.no_grad():
        return op.pinv(x)


def all_metrics(sr: ArrayLike, lr: ArrayLike, hr: ArrayLike, op: Any) -> dict[str, float]:
    """{"lr_mse", "lr_rel", "lr_psnr", "psnr", "ssim"} for one set of SR outputs (see the individual
    functions; the perception measures, which compare sets, are in affsr.perception)."""
    mse = lr_mse(sr, lr, op)
    return {
        "lr_mse": mse,
        "lr_rel": lr_rel(sr, lr, op),
        "lr_psnr": _lr_psnr_from_mse(mse),
        "psnr": psnr(sr, hr),
        "ssim": ssim(sr, hr),
    }
