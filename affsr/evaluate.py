"""Evaluation of one trained run or one reference upsampler on a data set's test split.

Outputs are computed in float32 in batches on the CPU or GPU and never clipped, so the consistency
metrics measure the model exactly as trained (clipping to [0, 1] would break Aŷ = x). Per-image
distortion and consistency come from affsr.metrics, set-level realism (swd, spectrum_distance, c2st:
outputs against the split's real HR images) from affsr.perception.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from affsr.build import pick_device
from affsr.checkpoint import check_data_matches, load_model, load_network
from affsr.data import load_manifest, load_positions, load_split
from affsr.errors import CheckpointError, ConfigError, DataError
from affsr.files import write_npz
from affsr.metrics import all_metrics, lr_mse, reference_outputs
from affsr.operators import Downsampling, operator_from_description
from affsr.perception import perception_metrics


def data_operator(data_dir: Path) -> Downsampling:
    """The operator A the data set was made with (recorded in its manifest)."""
    try:
        return operator_from_description(load_manifest(data_dir)["operator"])
    except (KeyError, ConfigError) as err:
        raise DataError(f"{data_dir}/manifest.json: no usable operator A recorded ({err}); re-run `affsr prepare`") from None


@torch.no_grad()
def super_resolve(model: torch.nn.Module, lr: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """ŷ for every LR image, batch by batch on the model's device; returns a CPU float32 tensor."""
    device = next(model.parameters()).device
    parts = [model(lr[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(lr), batch_size)]
    return torch.cat(parts)


def check_checkpoint_fits(path: Path, settings, model: torch.nn.Module, data_dir: Path, channels: int,
                          method: str) -> None:
    """A checkpoint from another configuration (other A, grey vs colour, another data set) cannot be
    evaluated on these data, and its rows must carry its own method name: say so in one line instead of
    failing inside a convolution or writing mislabelled metrics."""
    if method != settings.method:
        raise CheckpointError(f"{path}: is a '{settings.method}' run, not '{method}'; pass --method "
                              f"{settings.method} (or the checkpoint of '{method}')")
    trained_channels = model.generator.channels
    if trained_channels != channels:
        raise CheckpointError(f"{path}: trained on {trained_channels}-channel images, but {data_dir} has "
                              f"{channels}-channel images; evaluate it on the data set it was trained on")
    try:
        check_data_matches(settings, data_dir, load_manifest(data_dir), what="the checkpoint")
    except ConfigError as err:
        raise CheckpointError(f"{path}: does not fit {data_dir}: {err}") from None


DRAWS = 4  # samples per LR input of a stochastic generator


def draw_metrics(draws: torch.Tensor, lr: torch.Tensor, op: Downsampling) -> dict[str, float]:
    """Diversity and consistency of several outputs per input: draws (N, K, C, H, W), lr (N, C, h, w).

    ``diversity``: mean over inputs and pairs of draws of the RMS difference between two draws (0 = one
    answer per input, mode collapse; on the [0, 1] pixel scale). ``lr_mse_draws``: the largest lr_mse of
    any single draw (every answer must be consistent, not only the first).
    """
    n, k = draws.shape[:2]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    rms = [(draws[:, i] - draws[:, j]).double().square().flatten(1).mean(1).sqrt() for i, j in pairs]
    diversity = float(torch.stack(rms).mean())
    worst = max(lr_mse(draws[:, i], lr, op) for i in range(k))
    return {"diversity": diversity, "lr_mse_draws": worst}


REAL_HR = "hr"  # a "method" whose outputs are the real HR test images: the real-data floor
PERCEPTION_SEED = 0  # the same patch positions, directions and classifier folds for every method


def c2st_groups(data_dir: Path, split: str, hr_size: int) -> np.ndarray | None:
    """Cross-validation groups for c2st: which half of its source photo (left or right, by the patch's
    centre column) each patch was cut from. The demo's test patches overlap (128 of 32×32 from a 64-row
    band: each pixel in ~4 patches), so random folds would hold out near-duplicates of training images;
    halves only share the patches straddling the middle. None (random folds) for data sets of whole images
    (faces), which have no positions. The source photos' widths come from the manifest (``image_shapes``);
    without one, the widest extent the patches cover stands in (with one patch per photo, as in a small
    test split of many photos, that would put every patch in the right half: one group, no folds)."""
    try:
        pos = load_positions(data_dir, split)
    except DataError:
        return None
    try:
        shapes = load_manifest(data_dir).get("image_shapes")
    except DataError:
        shapes = None
    if shapes and len(shapes) > int(pos[:, 0].max()):
        width = np.array([shape[-1] for shape in shapes], dtype=np.int64)
    else:
        width = np.zeros(int(pos[:, 0].max()) + 1, dtype=np.int64)
        np.maximum.at(width, pos[:, 0], pos[:, 2] + hr_size)  # the widest extent seen per source image
    return (2 * (pos[:, 2] + hr_size // 2) >= width[pos[:, 0]]).astype(np.int64)


def real_data_floor(hr: torch.Tensor, seed: int = PERCEPTION_SEED,
                    groups: np.ndarray | None = None, scale: int = 4, c2st_steps: int = 200) -> dict[str, float]:
    """The perception metrics of real images against real images: two disjoint halves of ``hr``
    (N, C, H, W) (⌊N/2⌋ each) compared with each other. What a perfect method would score with this many
    images: c2st ≈ 0.5 and swd, spectrum_distance > 0 by sampling noise alone. Each half has half the
    images a method is compared with, so this floor is somewhat higher than a perfect method's would be
    (swd most of all at the coarsest pyramid level, which has few patches per image). With ``groups``
    (see :func:`c2st_groups`) the halves are drawn within each group, and pair i of the two halves keeps
    group labels for c2st (from the first half), so near-duplicates stay in one fold as far as possible."""
    gen = torch.Generator().manual_seed(seed)
    if groups is None:
        perm = torch.randperm(hr.shape[0], generator=gen)
        half = hr.shape[0] // 2
        return perception_metrics(hr[perm[:half]], hr[perm[half:2 * half]], seed=seed, scale=scale,
                                  c2st_steps=c2st_steps)
    g = torch.as_tensor(groups)
    first, second = [], []
    for label in torch.unique(g).tolist():
        idx = torch.nonzero(g == label)[:, 0]
        idx = idx[torch.randperm(len(idx), generator=gen)]
        half = len(idx) // 2
        first.append(idx[:half])
        second.append(idx[half:2 * half])
    a, b = torch.cat(first), torch.cat(second)
    return perception_metrics(hr[a], hr[b], seed=seed, groups=g[a].numpy(), scale=scale, c2st_steps=c2st_steps)


def evaluate(
    data_dir: Path,
    method: str,
    checkpoint_path: Path | None = None,
    split: str = "test",
    density_checkpoint: Path | None = None,
    c2st_steps: int = 200,
) -> tuple[pd.DataFrame, torch.Tensor]:
    """Metrics (tidy rows dataset, method, metric, value) and the outputs ŷ of one method.

    Returns the outputs (N, C, H, W), or for a stochastic generator every draw (N, DRAWS, C, H, W) (the
    metrics psnr … c2st are of the first draw; ``diversity`` and ``lr_mse_draws`` of all of them).
    ``method`` names a trained run (``checkpoint_path`` given), a reference upsampler (``bicubic`` or
    ``pinv`` = A⁺x) or ``hr`` (the real HR images: the real-data floor of the perception metrics, from
    two halves of the split, see :func:`real_data_floor`, and the cross-entropy of real images).
    Every other method gets the metrics of affsr.metrics (psnr, ssim, lr_mse, lr_rel, lr_psnr) and of
    affsr.perception (swd, spectrum_distance, c2st: all its outputs against all the split's real HR
    images, with one fixed seed so that methods are compared on the same draws; its classifier trains
    ``c2st_steps`` steps).
    With ``density_checkpoint`` (the held-out density model, trained on a split no method saw), the
    metric ``cross_entropy`` (bits/dim, lower = more likely under that model) is added; real HR
    images, being 8-bit, are dequantised first, model outputs are continuous and are not.
    """
    data_dir = Path(data_dir)
    op = data_operator(data_dir)
    lr, hr = load_split(data_dir, split)
    device = pick_device("auto")
    if method == REAL_HR:
        sr, values = hr, real_data_floor(hr, groups=c2st_groups(data_dir, split, hr.shape[-1]),
                                         scale=int(op.scale), c2st_steps=c2st_steps)
    else:
        if checkpoint_path is None:
            sr = reference_outputs(method, lr, op)  # float64: its consistency is exact
        else:
            model, settings = load_model(checkpoint_path, device)
            check_checkpoint_fits(checkpoint_path, settings, model, data_dir, lr.shape[1], method)
            torch.manual_seed(0)  # a stochastic generator's draws are reproducible
            sr = super_resolve(model, lr)
        values = all_metrics(sr, lr, hr, op)
        values.update(perception_metrics(sr, hr, seed=PERCEPTION_SEED, scale=int(op.scale),
                                         groups=c2st_groups(data_dir, split, hr.shape[-1]),
                                         c2st_steps=c2st_steps))
        if checkpoint_path is not None and model.generator.noise:
            draws = torch.stack([sr] + [super_resolve(model, lr) for _ in range(DRAWS - 1)], dim=1)
            values.update(draw_metrics(draws, lr, op))
    if density_checkpoint is not None:
        from affsr.density import cross_entropy

        density, _ = load_network(density_checkpoint, "density", device)
        values["cross_entropy"] = cross_entropy(density, sr.float().to(device), dequantize=method == REAL_HR)
    dataset = load_manifest(data_dir).get("dataset", data_dir.name)  # its params name, recorded by prepare
    rows = [{"dataset": dataset, "method": method, "metric": k, "value": v} for k, v in values.items()]
    return pd.DataFrame(rows), (draws if "diversity" in values else sr)


def save_samples(path: Path, sr: torch.Tensor, n: int) -> None:
    """Keep the first ``n`` test outputs for the figures (float32 npz): ``sr`` (n, C, H, W), and for a
    stochastic generator (``sr`` of shape (N, K, C, H, W)) also every draw, ``draws`` (n, K, C, H, W)."""
    arrays = {"sr": sr[:n, 0] if sr.ndim == 5 else sr[:n]}
    if sr.ndim == 5:
        arrays["draws"] = sr[:n]
    write_npz(path, compressed=False, **{k: v.numpy().astype(np.float32) for k, v in arrays.items()})
