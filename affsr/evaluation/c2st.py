"""The classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017): the held-out accuracy of a small CNN
trained to tell a set of outputs from real images — a realism metric that sees anything such a CNN can
learn from ~100 images. 0.5 = indistinguishable, 1 = every output caught.

Deterministic given ``seed`` on one machine and thread count; the caller's torch RNG is left untouched.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from affsr.evaluation.arrays import CHUNK, ArrayLike, as_pair
from affsr.training.adam import Adam

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
    a, b = as_pair(outputs, real)
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
                for part in test_idx.split(CHUNK):
                    correct += int((net(batch(a, part)) > 0).sum()) + int((net(batch(b, part)) <= 0).sum())
    return correct / (2 * n)
