"""Radially averaged power spectra of two image sets, and two realism metrics read off them:
``spectrum_distance`` (RMS difference of the log spectra, in decades) sees blur (too little
high-frequency power), noise (too much) and A⁺x's grid of dots (peaks at multiples of 1/s);
``hf_ratio`` (power above a cut-off over the real images') says which of blur (< 1) or noise (> 1).

Hann-windowed periodograms, floored at the power of 8-bit rounding noise so that exactly flat regions
do not dominate the log.
"""

from __future__ import annotations

import numpy as np
import torch

from affsr.evaluation.arrays import CHUNK, ArrayLike, as_batch, as_pair

# ---- power spectrum -------------------------------------------------------------------------------------


QUANTISATION_POWER = (1 / 255) ** 2 / 12  # periodogram level of 8-bit rounding noise, ≈ 1.3e-6 per bin


def radial_power_spectrum(images: ArrayLike, eps: float = QUANTISATION_POWER) -> tuple[np.ndarray, np.ndarray]:
    """(frequency, log10 power): the radially averaged power spectrum of a set, DC excluded.

    Each image channel has its mean removed and a 2-D Hann window applied (so the jump at the non-periodic
    image border does not leak power into every frequency), then |FFT|² / Σ window² (a periodogram, in
    (pixel value)² per frequency bin), averaged over images and channels, then averaged within radial bins of
    width 1/min(H, W) cycles/px (bin k holds radius ∈ [k − ½, k + ½)/min(H, W)), over the whole frequency
    plane up to the corners (√2·Nyquist, where the A⁺x dot grid also has peaks). Returns the bin-centre
    frequencies in cycles/px, shape (K,), and log10(power + eps), shape (K,), for bins k = 1 … K.
    ``eps`` defaults to the power of 8-bit rounding noise, (1/255)²/12: below it an 8-bit image cannot
    show a difference, and without a floor a blurred set's vanishing power (10⁻¹² at the highest
    frequencies for bicubic) would dominate the distance.
    """
    x = as_batch("images", images)
    n, c, H, W = x.shape
    win = torch.outer(torch.hann_window(H, periodic=False, dtype=torch.float64),
                      torch.hann_window(W, periodic=False, dtype=torch.float64))
    power = torch.zeros(H, W, dtype=torch.float64)
    for start in range(0, n, CHUNK):
        part = x[start : start + CHUNK].to(torch.float64)
        part = part - part.mean(dim=(2, 3), keepdim=True)
        power += (torch.fft.fft2(part * win).abs() ** 2).sum(dim=(0, 1))
    power /= n * c * win.square().sum()
    fy, fx = torch.fft.fftfreq(H, dtype=torch.float64), torch.fft.fftfreq(W, dtype=torch.float64)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) * min(H, W)
    bins = torch.round(radius).long().flatten()
    sums = torch.zeros(int(bins.max()) + 1, dtype=torch.float64).index_add_(0, bins, power.flatten())
    counts = torch.bincount(bins, minlength=len(sums)).to(torch.float64)
    keep = counts[1:] > 0
    mean = (sums[1:] / counts[1:].clamp_min(1))[keep]
    freq = (torch.arange(1, len(sums), dtype=torch.float64) / min(H, W))[keep]
    return freq.numpy(), torch.log10(mean + eps).numpy()


def spectrum_distance(outputs: ArrayLike, real: ArrayLike, eps: float = QUANTISATION_POWER) -> float:
    """RMS over radial frequency bins of the difference of the two sets' log10 power spectra.

    See :func:`radial_power_spectrum` (mean over images and channels of the windowed |FFT|², radial bins,
    log10 of power + eps, DC excluded). Units: decades of power (1.0 = a typical factor of 10 in power per frequency);
    range [0, ∞), 0 = identical mean spectra, lower = more realistic. Blur lowers, noise raises the high
    frequencies; the grid of dots of A⁺x adds peaks at multiples of 1/s cycles/px. It sees only the mean
    second-order statistics: it does not notice a wrong texture with the right spectrum (swd, c2st do).
    outputs (N, C, H, W) and real (M, C, H, W) on [0, 1], not clipped; float64, no randomness, ~10 ms.
    """
    a, b = as_pair(outputs, real)
    _, pa = radial_power_spectrum(a, eps)
    _, pb = radial_power_spectrum(b, eps)
    return float(np.sqrt(np.mean((pa - pb) ** 2)))


def hf_ratio(outputs: ArrayLike, real: ArrayLike, cutoff: float = 0.125,
             eps: float = QUANTISATION_POWER) -> float:
    """Power of the outputs above ``cutoff`` cycles/px over that of the real images (a ratio, no unit).

    The sign that :func:`spectrum_distance` lacks: < 1 = too little fine detail (blur), > 1 = too much
    (noise, artefacts), 1 = the real amount. With ``cutoff`` at the LR Nyquist frequency 1/(2s) (0.125 at
    scale 4, the default) it measures exactly the detail a 4× super-resolver must invent. Mean over the
    radial bins above the cutoff of the power spectra of :func:`radial_power_spectrum` (eps included, so
    a perfectly smooth set scores ≈ eps / real power, not 0). Range (0, ∞).
    """
    a, b = as_pair(outputs, real)
    freq, pa = radial_power_spectrum(a, eps)
    _, pb = radial_power_spectrum(b, eps)
    high = freq > cutoff
    if not high.any():
        raise ValueError(f"hf_ratio: no frequency above cutoff {cutoff} cycles/px for images of this size")
    return float((10.0 ** pa[high]).mean() / (10.0 ** pb[high]).mean())
