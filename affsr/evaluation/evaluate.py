"""Evaluation of one trained run or one reference upsampler on a data set's test split: ``affsr evaluate``.

Outputs are computed in float32 in batches on the CPU or GPU and never clipped, so the consistency
metrics measure the model exactly as trained (clipping to [0, 1] would break Aŷ = x). Which metrics a
method gets, and in which order its rows are written, is :data:`affsr.evaluation.metrics.METRICS`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from affsr.atomic_files import write_npz
from affsr.data.load import load_manifest, load_positions, load_split
from affsr.errors import CheckpointError, ConfigError, DataError
from affsr.evaluation.metrics import Scored, compute_metrics
from affsr.evaluation.references import reference_outputs
from affsr.operators.downsampling import Downsampling
from affsr.operators.kinds import operator_from_description
from affsr.training.accelerate import pick_device
from affsr.training.checkpoint import check_data_matches, load_model, load_network


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
        check_data_matches(settings, data_dir, load_manifest(data_dir), what="the checkpoint", op=model.op)
    except ConfigError as err:
        raise CheckpointError(f"{path}: does not fit {data_dir}: {err}") from None


DRAWS = 4  # samples per LR input of a stochastic generator


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


def real_data_halves(hr: torch.Tensor, seed: int = PERCEPTION_SEED, groups: np.ndarray | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
    """The real-data floor of the realism metrics: two disjoint halves of ``hr`` (N, C, H, W) (⌊N/2⌋
    each), to be compared with each other — what a perfect method would score with this many images:
    c2st ≈ 0.5 and swd, spectrum_distance > 0 by sampling noise alone. Each half has half the images a
    method is compared with, so this floor is somewhat higher than a perfect method's would be (swd most
    of all at the coarsest pyramid level, which has few patches per image). With ``groups`` (see
    :func:`c2st_groups`) the halves are drawn within each group, and pair i of the two halves keeps group
    labels for c2st (from the first half), so near-duplicates stay in one fold as far as possible.
    Returns (first half, second half, the first half's groups or None)."""
    gen = torch.Generator().manual_seed(seed)
    if groups is None:
        perm = torch.randperm(hr.shape[0], generator=gen)
        half = hr.shape[0] // 2
        return hr[perm[:half]], hr[perm[half:2 * half]], None
    g = torch.as_tensor(groups)
    first, second = [], []
    for label in torch.unique(g).tolist():
        idx = torch.nonzero(g == label)[:, 0]
        idx = idx[torch.randperm(len(idx), generator=gen)]
        half = len(idx) // 2
        first.append(idx[:half])
        second.append(idx[half:2 * half])
    a, b = torch.cat(first), torch.cat(second)
    return hr[a], hr[b], g[a].numpy()


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
    two halves of the split, see :func:`real_data_halves`, and the cross-entropy of real images).
    Every method gets the metrics of :data:`~affsr.evaluation.metrics.METRICS` it has what they need for
    (the realism metrics compare all its outputs with all the split's real HR images, with one fixed seed
    so that methods are compared on the same draws; the c2st classifier trains ``c2st_steps`` steps).
    With ``density_checkpoint`` (the held-out density model, trained on a split no method saw), the
    metric ``cross_entropy`` (bits/dim, lower = more likely under that model) is added; real HR
    images, being 8-bit, are dequantised first, model outputs are continuous and are not.
    """
    data_dir = Path(data_dir)
    op = data_operator(data_dir)
    lr, hr = load_split(data_dir, split)
    groups = c2st_groups(data_dir, split, hr.shape[-1])
    device = pick_device("auto")
    draws = None
    if method == REAL_HR:
        first, second, first_groups = real_data_halves(hr, groups=groups)
        scored = Scored(outputs=hr, op=op, compared=first, real=second, groups=first_groups)
    else:
        if checkpoint_path is None:
            sr = reference_outputs(method, lr, op)  # float64: its consistency is exact
        else:
            model, settings = load_model(checkpoint_path, device)
            check_checkpoint_fits(checkpoint_path, settings, model, data_dir, lr.shape[1], method)
            torch.manual_seed(0)  # a stochastic generator's draws are reproducible
            sr = super_resolve(model, lr)
            if model.generator.noise:
                draws = torch.stack([sr] + [super_resolve(model, lr) for _ in range(DRAWS - 1)], dim=1)
        scored = Scored(outputs=sr, op=op, compared=sr, real=hr, lr=lr, hr=hr, groups=groups, draws=draws)
    scored.seed, scored.c2st_steps = PERCEPTION_SEED, c2st_steps
    if density_checkpoint is not None:
        scored.density, _ = load_network(density_checkpoint, "density", device)
        scored.dequantize = method == REAL_HR  # real images are 8-bit; model outputs are continuous
    values = compute_metrics(scored)
    dataset = load_manifest(data_dir).get("dataset", data_dir.name)  # its params name, recorded by prepare
    rows = [{"dataset": dataset, "method": method, "metric": k, "value": v} for k, v in values.items()]
    return pd.DataFrame(rows), (draws if draws is not None else scored.outputs)


def save_samples(path: Path, sr: torch.Tensor, n: int) -> None:
    """Keep the first ``n`` test outputs for the figures (float32 npz): ``sr`` (n, C, H, W), and for a
    stochastic generator (``sr`` of shape (N, K, C, H, W)) also every draw, ``draws`` (n, K, C, H, W)."""
    arrays = {"sr": sr[:n, 0] if sr.ndim == 5 else sr[:n]}
    if sr.ndim == 5:
        arrays["draws"] = sr[:n]
    write_npz(path, compressed=False, **{k: v.numpy().astype(np.float32) for k, v in arrays.items()})
