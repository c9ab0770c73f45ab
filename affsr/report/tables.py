"""Metric tables for people and tools: the one-screen summary, Markdown, and the tree DVC reads.

Inputs are tidy metric frames (columns dataset, method, metric, value) as ``affsr evaluate`` and
``affsr toy`` write them. Columns follow :data:`affsr.evaluation.metrics.METRICS` (its order and each
metric's format); a metric it does not list (the toy's spreads) follows in order of appearance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from affsr.errors import DataError
from affsr.evaluation.metrics import BY_NAME, METRIC_ORDER

#: The format of a metric that :data:`METRIC_ORDER` does not list.
OTHER_FORMAT = "{:.2e}"


def _wide(metrics: pd.DataFrame) -> pd.DataFrame:
    """dataset × method rows, one formatted column per metric, methods in the order first seen."""
    wide = metrics.pivot_table(index=["dataset", "method"], columns="metric", values="value",
                               aggfunc="first", sort=False)
    order = [c for c in METRIC_ORDER if c in wide.columns]
    wide = wide[order + [c for c in wide.columns if c not in order]]
    return wide.apply(lambda col: col.map(
        lambda v: "–" if pd.isna(v) else (BY_NAME[col.name].table_format if col.name in BY_NAME else OTHER_FORMAT).format(v)))


def summary_table(metrics: pd.DataFrame) -> str:
    """One-screen text table: one row per dataset × method, one column per metric."""
    return _wide(metrics).to_string()


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (cells as they are, no index)."""
    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def summary_markdown(metrics: pd.DataFrame) -> str:
    """The same table in Markdown (results/summary.md), with what each metric means."""
    table = markdown_table(_wide(metrics).reset_index())
    legend = (
        "\n\nTest split. psnr (dB) and ssim on [0, 1] pixel values, higher is better; lr_mse = mean "
        "(x − Aŷ)² and lr_rel = ‖Aŷ − x‖/‖x‖, the consistency with the LR input, lower is better; "
        "lr_psnr = 10·log10(1/lr_mse) dB, higher is better (≥ 45 dB counts as consistent in NTIRE "
        "2021/22; capped at 400). Realism of the output set against the real HR test images, lower is "
        "better: swd = sliced Wasserstein distance of 7×7 patches on a Laplacian pyramid (×10³), "
        "spectrum_distance = RMS difference of radially averaged log10 power spectra (decades); hf_ratio = "
        "power above the LR Nyquist frequency over the real images' (< 1 blur, > 1 noise, 1 = real); c2st = "
        "held-out accuracy of a small CNN telling outputs from real images (0.5 = indistinguishable, "
        "1 = always caught). The `hr` row is the real-data floor: two halves of the real images "
        "compared with each other. "
        "`pinv` is A⁺x, `bicubic` plain bicubic upsampling on A's grid. cross_entropy: bits/dim of the "
        "outputs under a density model trained on a split no method saw (lower = more likely; `hr` = "
        "real test images). A likelihood model is expected to favour blur (paper App. E). Dataset `toy`: the "
        "2-D experiment, cross_entropy in nats under the KDE prior (paper Table 1; see "
        "results/toy/table1.md).\n"
    )
    return "# affsr results\n\n" + table + legend


def metrics_tree(metrics: pd.DataFrame) -> dict:
    """{dataset: {method: {metric: value}}} for `dvc metrics`; metrics on a log scale (the consistency
    errors) also as log10, since `dvc metrics show` rounds to a few decimals and they are ~1e-15 for
    projected models."""
    tree: dict = {}
    for row in metrics.itertuples(index=False):
        entry = tree.setdefault(row.dataset, {}).setdefault(row.method, {})
        entry[row.metric] = float(row.value)
        if row.metric in BY_NAME and BY_NAME[row.metric].log_scale:
            entry[f"log10_{row.metric}"] = float(np.log10(max(row.value, 1e-300)))
    return tree


def read_metrics(paths: list[Path]) -> pd.DataFrame:
    """Concatenate per-run metric CSVs (columns dataset, method, metric, value)."""
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise DataError(f"{path}: cannot read metrics ({err})") from None
        missing = {"dataset", "method", "metric", "value"} - set(frame.columns)
        if missing:
            raise DataError(f"{path}: missing columns {sorted(missing)}")
        frames.append(frame)
    if not frames:
        raise DataError("no metric files given")
    return pd.concat(frames, ignore_index=True)
