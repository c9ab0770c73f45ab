"""Distortion against the HR image: PSNR and SSIM (paper Table 2), per image, averaged over the set.

Computed on the channels as given (no colour conversion), without a border crop and without clipping the
outputs (the paper states none of these): clipping would change Aŷ and break a projected output's exact
consistency, so PSNR and SSIM see the outputs exactly as the consistency metrics do.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from affsr.evaluation.arrays import ArrayLike, as_float64_array, check_4d


def _per_image(sr: ArrayLike, hr: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 numpy (N, H, W, C), shape-checked."""
    a, b = as_float64_array(sr), as_float64_array(hr)
    check_4d("sr", a)
    check_4d("hr", b)
    if a.shape != b.shape:
        raise ValueError(f"sr shape {a.shape} does not match hr shape {b.shape}")
    return a.transpose(0, 2, 3, 1), b.transpose(0, 2, 3, 1)


#: The per-image MSE floor of :func:`psnr`: the noise of ideal 8-bit rounding, (1/255)² / 12, so PSNR ≤
#: 10·log₁₀(12 · 255²) ≈ 58.9 dB. The data are 8-bit images; an output within their rounding noise of its HR
#: image is as good as identical, and counting it as inf would make the set's mean inf.
PSNR_MSE_FLOOR = 1.0 / (12 * 255**2)


def psnr(sr: ArrayLike, hr: ArrayLike) -> float:
    """Mean over images of 10·log₁₀(1 / max(MSE(sr, hr), PSNR_MSE_FLOOR)), in dB, at most ≈ 58.9 dB:
    skimage's ``peak_signal_noise_ratio(hr, sr, data_range=1.0)`` for every image above the floor (tested
    equal), computed here because importing that function loads scipy.stats (≈ 1 s in each of the study's
    ≈ 50 evaluation processes).

    Per image over all pixels and channels as given (RGB or grey, no colour conversion, no border crop),
    sr not clipped. The floor keeps the mean finite when a test image is flat (the photos' all-black
    patches, which bicubic and A⁺x reproduce exactly).
    """
    a, b = _per_image(sr, hr)
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)
    values = 10.0 * np.log10(1.0 / np.maximum(mse, PSNR_MSE_FLOOR))
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
