"""Perception metrics: how far a set of SR outputs is from the *distribution* of real HR images.

PSNR/SSIM (affsr.metrics) compare each output with its own ground truth and so reward the blurry mean
answer; the paper's point (Sønderby et al. 2017, §1 and Fig. 1) is that a MAP estimate should instead look
like a sample of the image distribution. None of the three measures here needs downloaded weights:

* :func:`swd` — sliced Wasserstein distance between 7×7 patch sets on a Laplacian pyramid
  (Karras et al. 2018, "Progressive Growing of GANs", App. D). Sees texture statistics per scale.
* :func:`spectrum_distance` — RMS difference of radially averaged log power spectra. Sees blur (too little
  high-frequency power), noise (too much) and the A⁺x grid of dots (peaks at multiples of 1/s).
* :func:`c2st` — classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017): held-out accuracy of a small
  CNN trained to tell outputs from real images. Sees anything a small CNN can learn from ~100 images.

Shared conventions: images are (N, C, H, W) torch tensors or numpy arrays on the [0, 1] pixel scale,
C = 1 or 3, compared channel by channel as given (no colour conversion, no border crop). Outputs are **not
clipped** (as in affsr.metrics): a value outside [0, 1] is itself a departure from real 8-bit images, and
every measure here may legitimately use it. All three are symmetric in their two arguments up to the
random draws, lower = more realistic, 0 (c2st: 0.5) for two sets from one distribution in the limit of
many images; with few images the "real-data floor" (two disjoint halves of the real images, the ``hr``
row of ``affsr evaluate``) is the number to compare with. Each is deterministic given ``seed``.
"""

from __future__ import annotations

import math

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from affsr.optim import Adam

__all__ = [
    "swd", "swd_per_level", "laplacian_pyramid", "radial_power_spectrum", "spectrum_distance", "c2st",
    "perception_metrics",
]

ArrayLike = Any  # torch.Tensor | np.ndarray

# ---- helpers --------------------------------------------------------------------------------------------


_CHUNK = 256  # images per pyramid / FFT call (bounds memory for 10⁴ paper-scale test images)


def _as_tensor(name: str, a: ArrayLike) -> torch.Tensor:
    """Detached CPU tensor (a view where possible, dtype kept), checked to be a non-empty (N, C, H, W) batch."""
    t = a.detach().cpu() if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
    if t.ndim != 4:
        raise ValueError(f"{name} must be (N, C, H, W), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} has no images (N = 0)")
    if not t.is_floating_point():
        raise ValueError(f"{name} must hold floats on the [0, 1] scale, got dtype {t.dtype}")
    return t


def _pair(outputs: ArrayLike, real: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _as_tensor("outputs", outputs), _as_tensor("real", real)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"outputs images {tuple(a.shape[1:])} and real images {tuple(b.shape[1:])} differ in "
                         f"(C, H, W); compare images of one size and channel count")
    return a, b


# ---- sliced Wasserstein distance ------------------------------------------------------------------------

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0  # Karras et al.'s 5×5 Gaussian, separable


def _blur(x: torch.Tensor) -> torch.Tensor:
    """5×5 binomial low-pass per channel, mirror boundary (as scipy.ndimage 'mirror' in Karras et al.)."""
    c = x.shape[1]
    k = _BINOMIAL.to(x.dtype)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def laplacian_pyramid(images: ArrayLike, min_size: int = 8) -> list[torch.Tensor]:
    """Laplacian pyramid, finest level first: (N, C, H, W) → [(N, C, H, W), (N, C, H/2, W/2), …].

    Level k is G_k − up(G_{k+1}) with G_{k+1} = every other pixel of blur(G_k), up = zero insertion + 4·blur;
    the last level is the coarsest Gaussian G_K itself (Karras et al.'s code does the same). Levels are
    added while the next one would still be ≥ ``min_size`` px on its short side: 32 px → 32, 16, 8;
    24 px → 24, 12; 128 px → 128 … 8. Values in pixel units of the input (band-pass, around 0).
    """
    g = _as_tensor("images", images).to(torch.float32)
    levels = []
    while min(g.shape[-2:]) // 2 >= min_size and min(g.shape[-2:]) % 2 == 0:
        down = _blur(g)[..., ::2, ::2]
        up = torch.zeros_like(g)
        up[..., ::2, ::2] = down
        levels.append(g - 4 * _blur(up))
        g = down
    levels.append(g)
    return levels


def _patches(level: torch.Tensor, centres: torch.Tensor, size: int) -> torch.Tensor:
    """(N·P, C·size²) descriptors: the size×size patches around the (P, 2) top-left corners in every image."""
    win = level.unfold(2, size, 1).unfold(3, size, 1)  # (N, C, H−size+1, W−size+1, size, size)
    d = win[:, :, centres[:, 0], centres[:, 1]]  # (N, C, P, size, size)
    return d.permute(0, 2, 1, 3, 4).reshape(-1, level.shape[1], size * size)


def _level_descriptors(images: torch.Tensor, gen: torch.Generator, positions: list[torch.Tensor] | None,
                       per_image: int, patch_size: int, min_size: int) -> tuple[list[torch.Tensor], list]:
    """Per pyramid level, the (N·P, C, size²) patch descriptors of every image, chunk by chunk (bounded
    memory). ``positions`` (P, 2) per level are drawn on the first call and then reused for the other set."""
    per_level: list[list[torch.Tensor]] = []
    for start in range(0, images.shape[0], _CHUNK):
        pyramid = laplacian_pyramid(images[start : start + _CHUNK], min_size)
        pyramid = [lv for lv in pyramid if min(lv.shape[-2:]) >= patch_size]
        if positions is None:
            positions = []
            for lv in pyramid:
                h, w = lv.shape[-2] - patch_size + 1, lv.shape[-1] - patch_size + 1
                n_pos = h * w
                pick = torch.randperm(n_pos, generator=gen)[:per_image] if n_pos > per_image else torch.arange(n_pos)
                positions.append(torch.stack([pick // w, pick % w], dim=1))
        if not per_level:
            per_level = [[] for _ in pyramid]
        for k, lv in enumerate(pyramid):
            per_level[k].append(_patches(lv, positions[k], patch_size))
    return [torch.cat(parts) for parts in per_level], positions


def swd_per_level(
    outputs: ArrayLike,
    real: ArrayLike,
    seed: int = 0,
    patches_per_image: int = 128,
    patch_size: int = 7,
    directions: int = 128,
    repeats: int = 4,
    min_size: int = 8,
    max_descriptors: int = 65536,
) -> np.ndarray:
    """Sliced Wasserstein distance per Laplacian-pyramid level (finest first), ×10³; see :func:`swd`."""
    a, b = _pair(outputs, real)
    if min(a.shape[-2:]) < patch_size:
        raise ValueError(f"images of {tuple(a.shape[-2:])} px are smaller than the {patch_size}×{patch_size} patch")
    gen = torch.Generator().manual_seed(int(seed))
    # The same P patch positions in every image of both sets: the descriptor multiset then does not depend
    # on the order of the images, and outputs and reals are sampled alike. All positions if there are few;
    # fewer per image for large sets (10⁴ paper-scale test images), so memory and time stay bounded.
    per_image = max(1, min(patches_per_image, max_descriptors // max(a.shape[0], b.shape[0])))
    desc_a, positions = _level_descriptors(a, gen, None, per_image, patch_size, min_size)
    desc_b, _ = _level_descriptors(b, gen, positions, per_image, patch_size, min_size)
    out = []
    for da, db in zip(desc_a, desc_b):
        # Normalise each channel by the mean/std over the union of both sets. (Karras et al.'s code
        # normalises each set by its own statistics, which hides a global loss of contrast such as blur.)
        both = torch.cat([da, db])
        mean = both.mean(dim=(0, 2), keepdim=True)
        std = both.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
        da, db = ((da - mean) / std).flatten(1), ((db - mean) / std).flatten(1)
        if len(da) != len(db):  # unequal set sizes: compare equally many descriptors, a random subset
            n = min(len(da), len(db))
            da = da[torch.randperm(len(da), generator=gen)[:n]]
            db = db[torch.randperm(len(db), generator=gen)[:n]]
        # repeats × directions random unit directions at once (the mean over all of them equals the mean
        # over repeats of the per-repeat means). 1-D Wasserstein-1 between two equal-size samples = mean
        # |difference| of the sorted values; numpy's float32 sort is ~5× faster than torch's on the CPU.
        dirs = torch.randn(da.shape[1], repeats * directions, generator=gen)
        dirs /= dirs.norm(dim=0, keepdim=True)
        pa = np.sort((da @ dirs).T.numpy(), axis=1)
        pb = np.sort((db @ dirs).T.numpy(), axis=1)
        out.append(1e3 * float(np.abs(pa - pb).mean(dtype=np.float64)))
    return np.asarray(out)


def swd(outputs: ArrayLike, real: ArrayLike, seed: int = 0, **options: int) -> float:
    """Sliced Wasserstein distance between the 7×7 patch sets of two image sets, ×10³, mean over levels.

    Karras et al. (2018) App. D: a Laplacian pyramid of each image (:func:`laplacian_pyramid`; levels down to
    ``min_size`` px, so 3 levels at 32 px, 5 at 128 px); per level ``patches_per_image`` random 7×7
    neighbourhoods per image (the same positions in every image; all positions when fewer), each descriptor
    normalised per channel by the mean and std of that level's descriptors over *both* sets; then
    ``repeats`` × ``directions`` (4 × 128) random unit directions, and the 1-D Wasserstein-1 distance of the
    projections by sorting. Reported ×10³ like their tables, averaged over levels (:func:`swd_per_level`
    gives each level). Units: normalised descriptor values ×10³; range [0, ∞), 0 = identical patch
    distributions, lower = more realistic. A finite sample of one distribution scores > 0 (the ``hr``
    floor). outputs (N, C, H, W) and real (M, C, H, W) on [0, 1], not clipped; N ≠ M is allowed (equally
    many descriptors are drawn). Deterministic given ``seed``; float32 on the CPU, ≈ 1 s (128 patches per
    image; 0.5 s with 64, as evaluate uses) for 128 + 128
    images of 32×32. ``options``: the keyword arguments of :func:`swd_per_level` (patches_per_image,
    patch_size, directions, repeats, min_size, max_descriptors).
    """
    return float(np.mean(swd_per_level(outputs, real, seed, **options)))


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
    x = _as_tensor("images", images)
    n, c, H, W = x.shape
    win = torch.outer(torch.hann_window(H, periodic=False, dtype=torch.float64),
                      torch.hann_window(W, periodic=False, dtype=torch.float64))
    power = torch.zeros(H, W, dtype=torch.float64)
    for start in range(0, n, _CHUNK):
        part = x[start : start + _CHUNK].to(torch.float64)
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
    a, b = _pair(outputs, real)
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
    a, b = _pair(outputs, real)
    freq, pa = radial_power_spectrum(a, eps)
    _, pb = radial_power_spectrum(b, eps)
    high = freq > cutoff
    if not high.any():
        raise ValueError(f"hf_ratio: no frequency above cutoff {cutoff} cycles/px for images of this size")
    return float((10.0 ** pa[high]).mean() / (10.0 ** pb[high]).mean())


# ---- classifier two-sample test -------------------------------------------------------------------------


def _classifier(channels: int, width: int) -> torch.nn.Module:
    """3 stride-2 3×3 convs (width, 2·width, 4·width maps) + global average pool + linear → one logit."""
    w1, w2, w3 = width, 2 * width, 4 * width
    return torch.nn.Sequential(
        torch.nn.Conv2d(channels, w1, 3, stride=2, padding=1), torch.nn.LeakyReLU(0.2),
        torch.nn.Conv2d(w1, w2, 3, stride=2, padding=1), torch.nn.LeakyReLU(0.2),
        torch.nn.Conv2d(w2, w3, 3, stride=2, padding=1), torch.nn.LeakyReLU(0.2),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(w3, 1),
    )


def _assign_folds(n: int, folds: int, gen: torch.Generator, groups: ArrayLike | None) -> torch.Tensor:
    """(n,) fold index per pair: a random balanced split, or whole groups (largest first, to the emptiest fold)."""
    if groups is None:
        return torch.randperm(n, generator=gen) % folds
    g = torch.as_tensor(np.asarray(groups)).long()
    if g.shape != (n,):
        raise ValueError(f"groups must give one label per image pair, shape ({n},), got {tuple(g.shape)}")
    labels, inverse, counts = torch.unique(g, return_inverse=True, return_counts=True)
    if len(labels) < folds:
        raise ValueError(f"c2st needs at least {folds} groups for {folds}-fold cross-validation, got {len(labels)}")
    order = torch.randperm(len(labels), generator=gen)  # random tie-break, then largest group first
    order = order[torch.argsort(counts[order], descending=True, stable=True)]
    fold_of_group, load = torch.empty(len(labels), dtype=torch.long), [0] * folds
    for j in order.tolist():
        k = min(range(folds), key=lambda f: load[f])
        fold_of_group[j], load[k] = k, load[k] + int(counts[j])
    return fold_of_group[inverse]


def c2st(
    outputs: ArrayLike,
    real: ArrayLike,
    seed: int = 0,
    folds: int = 2,
    steps: int = 200,
    batch_size: int = 32,
    width: int = 8,
    lr: float = 1e-2,
    groups: ArrayLike | None = None,
) -> float:
    """Classifier two-sample test: held-out accuracy of a small CNN telling outputs from real images.

    Lopez-Paz & Oquab (ICLR 2017). outputs and real are (N, C, H, W) with the same N (balanced classes;
    image i of both sets is the same test image, SR'd and real). The N pairs are split at random into
    ``folds`` folds; output i and real i always fall in the same fold, so the classifier never trains on
    one of a pair and is tested on the other (an output resembles its own ground truth, which would bias the
    accuracy below 0.5). ``groups`` (N,) integer labels keep whole groups in one fold (grouped k-fold, groups
    assigned largest first to the smallest fold): patches cut from overlapping regions of one photo are
    near-duplicates, and a held-out image whose near-duplicate was trained on (with the other label) also
    biases the accuracy below 0.5. Per fold a fresh CNN (:func:`_classifier`: 3 stride-2 convs, 8/16/32 maps, global
    average pool, linear) trains with Adam for ``steps`` steps on balanced batches from the other folds
    (random horizontal and vertical flips), then classifies the held-out fold. Returns the accuracy over all
    2N images, each held out exactly once: range [0, 1], 0.5 = indistinguishable (chance), 1.0 = every
    output caught; lower (towards 0.5) = more realistic. Values below 0.5 are chance fluctuations: with N
    pairs the standard error at chance is ≈ 0.5/√(2N) (0.03 for N = 128, 0.1 for the 13 faces).

    Inputs are **not clipped**: values outside [0, 1], which no 8-bit image has, are a realism failure the
    classifier may legitimately use. Both sets go through one affine map per channel (minus the real
    images' mean, over their std), which only conditions the training (without it 200 steps are too few
    to catch bicubic on the RGB demo set: 0.52 instead of 0.79). Runs on the CPU in float32 under a
    forked RNG seeded with ``seed`` (the caller's torch RNG is untouched): deterministic on one machine and
    thread count. ~1 s on one thread for 128 + 128 images of 32×32.
    """
    a, b = _pair(outputs, real)
    n = a.shape[0]
    if b.shape[0] != n:
        raise ValueError(f"c2st needs as many outputs as real images (balanced classes), got {n} and {b.shape[0]}")
    if n < folds:
        raise ValueError(f"c2st needs at least {folds} images per set for {folds}-fold cross-validation, got {n}")

    # One affine rescaling of both sets (per channel, by the real images' mean and std) only conditions
    # the optimisation: it maps both classes alike, so out-of-range values stay out of range.
    mean = b.to(torch.float64).mean(dim=(0, 2, 3)).view(1, -1, 1, 1).float()
    std = b.to(torch.float64).std(dim=(0, 2, 3)).clamp_min(1e-3).view(1, -1, 1, 1).float()

    def batch(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return (t[idx].to(torch.float32) - mean) / std

    correct = 0
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(int(seed))  # the networks' initialisation
        gen = torch.Generator().manual_seed(int(seed))  # folds, batches, flips
        fold_of = _assign_folds(n, folds, gen, groups)
        half = max(1, batch_size // 2)
        target = torch.cat([torch.ones(half), torch.zeros(half)])[:, None]
        for k in range(folds):
            train_idx, test_idx = torch.nonzero(fold_of != k)[:, 0], torch.nonzero(fold_of == k)[:, 0]
            net = _classifier(a.shape[1], width)
            opt = Adam(net.parameters(), lr=lr)
            for _ in range(steps):
                ia = train_idx[torch.randint(len(train_idx), (half,), generator=gen)]
                ib = train_idx[torch.randint(len(train_idx), (half,), generator=gen)]
                x = torch.cat([batch(a, ia), batch(b, ib)])
                flip = torch.rand(2, len(x), generator=gen) < 0.5
                x = torch.where(flip[0, :, None, None, None], x.flip(-1), x)
                x = torch.where(flip[1, :, None, None, None], x.flip(-2), x)
                loss = F.binary_cross_entropy_with_logits(net(x), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                for part in test_idx.split(_CHUNK):
                    correct += int((net(batch(a, part)) > 0).sum()) + int((net(batch(b, part)) <= 0).sum())
    return correct / (2 * n)


def perception_metrics(outputs: ArrayLike, real: ArrayLike, seed: int = 0,
                       groups: ArrayLike | None = None, scale: int = 4, c2st_steps: int = 200) -> dict[str, float]:
    """{"swd", "spectrum_distance", "hf_ratio", "c2st", "c2st_se"} of one set of outputs against real
    images (see each function; ``hf_ratio`` above the LR Nyquist frequency 1/(2·scale)). ``c2st_se`` is
    the binomial standard error √(p(1 − p)/2N) of the held-out accuracy p over its 2N test decisions:
    with the 13 test faces of the demo it is ≈ 0.1, so differences below ≈ 0.2 mean nothing there.

    c2st needs len(outputs) == len(real) (and takes ``groups``); the others do not.
    """
    accuracy = c2st(outputs, real, seed=seed, groups=groups, steps=c2st_steps)
    decisions = 2 * len(outputs)
    return {
        # 64 patches per image (not Karras's 128): the same values to ±1 % on the demo sets, half the time
        "swd": swd(outputs, real, seed=seed, patches_per_image=64),
        "spectrum_distance": spectrum_distance(outputs, real),
        "hf_ratio": hf_ratio(outputs, real, cutoff=0.5 / scale),
        "c2st": accuracy,
        "c2st_se": math.sqrt(accuracy * (1.0 - accuracy) / decisions),
    }
