"""Sliced Wasserstein distance between the 7×7 patch sets of two image sets on a Laplacian pyramid
(Karras et al. 2018, "Progressive Growing of GANs", App. D): a realism metric that sees texture
statistics per scale.

Symmetric in its two sets up to the random draws (patch positions and directions, fixed by ``seed``),
lower = more alike, 0 for two sets of one distribution in the limit of many images; with few images the
real-data floor (two halves of the real images) is the number to compare with.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from affsr.evaluation.arrays import CHUNK, ArrayLike, as_batch, as_pair

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
    g = as_batch("images", images).to(torch.float32)
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
    for start in range(0, images.shape[0], CHUNK):
        pyramid = laplacian_pyramid(images[start : start + CHUNK], min_size)
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
    a, b = as_pair(outputs, real)
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
