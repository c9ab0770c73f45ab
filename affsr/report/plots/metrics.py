"""Metric figures: bar charts of every metric by method and data set, and the perception–distortion plot.

Both take the tidy metrics table (columns dataset, method, metric, value) that ``affsr aggregate``
writes. Panels, labels and axes follow :data:`affsr.evaluation.metrics.METRICS`: the consistency metrics
span many decades down to exact zeros, so they are drawn on a log axis floored at :data:`LOG_FLOOR`.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from affsr.evaluation.metrics import BY_NAME, METRIC_ORDER
from affsr.report.plots.common import ordered_unique, save_atomic, style

__all__ = ["metrics_plot", "perception_distortion", "LOG_FLOOR"]

#: Display floor for log-scale metrics (exact zeros / ~1e-14 values are shown at this level).
LOG_FLOOR = 1e-16


def _label(metric: str) -> str:
    return BY_NAME[metric].label if metric in BY_NAME else metric


def _log_scale(metric: str) -> bool:
    return metric in BY_NAME and BY_NAME[metric].log_scale


def _compact(v: float) -> str:
    """Short number format for bar annotations."""
    if v is None or not np.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.1e}".replace("e-0", "e-").replace("e+0", "e")
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def metrics_plot(metrics: pd.DataFrame, path: Path) -> None:
    """Bar charts of evaluation metrics: one panel per metric, bars = methods, hue = dataset.

    ``metrics`` is a tidy table with columns dataset, method, metric, value (duplicates are
    averaged). Panels follow METRIC_ORDER, then any other metric. Log-scale metrics (the consistency
    errors) use a log y-axis with values floored at LOG_FLOOR for display (the axis label says so);
    bar annotations show the unfloored value.
    """
    if not isinstance(metrics, pd.DataFrame):
        raise ValueError(f"metrics_plot: expected a pandas DataFrame, got {type(metrics).__name__}")
    required = ["dataset", "method", "metric", "value"]
    missing = [c for c in required if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics_plot: missing column(s) {missing}; need {required}")
    df = metrics[required].copy()
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df = df.dropna(subset=["dataset", "method", "metric"])
    if df.empty or df["value"].notna().sum() == 0:
        raise ValueError("metrics_plot: metrics table is empty (no rows with a numeric value)")
    for c in ("dataset", "method", "metric"):
        df[c] = df[c].astype(str)

    present = ordered_unique(df["metric"].tolist())
    order = [m for m in METRIC_ORDER if m in present] + [m for m in present if m not in METRIC_ORDER]
    methods = ordered_unique(df["method"].tolist())
    datasets = ordered_unique(df["dataset"].tolist())
    table = df.groupby(["metric", "method", "dataset"], sort=False)["value"].mean()

    n = len(order)
    bars = len(methods) * max(1, len(datasets))
    panel_w = max(4.2, (0.55 if len(datasets) == 1 else 0.32) * bars + 1.5)
    # Panels side by side while the figure stays ≤ ~24 in wide; many bars (3 domains × 12 methods) → one column.
    ncols = max(1, min(n, 3 if n > 4 else 2, int(24 // panel_w)))
    nrows = math.ceil(n / ncols)
    palette = sns.color_palette("deep", len(datasets))
    with style("whitegrid"):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(panel_w * ncols, 3.6 * nrows), squeeze=False
        )
        try:
            width = 0.8 / len(datasets)
            x = np.arange(len(methods))
            for k, metric in enumerate(order):
                ax = axes[k // ncols][k % ncols]
                log = _log_scale(metric)
                vals = np.array(
                    [
                        [table.get((metric, m, d), np.nan) for d in datasets]
                        for m in methods
                    ],
                    dtype=float,
                )  # (methods, datasets)
                finite = vals[np.isfinite(vals)]
                if log:
                    shown = np.where(np.isfinite(vals), np.maximum(vals, LOG_FLOOR), np.nan)
                    lo_exp = math.floor(math.log10(np.nanmin(shown))) - 1 if finite.size else -17
                    hi_exp = math.ceil(math.log10(np.nanmax(shown))) + 1 if finite.size else 0
                    bottom = 10.0**lo_exp
                else:
                    shown = vals
                    bottom = 0.0
                for di, d in enumerate(datasets):
                    xs = x - 0.4 + width * (di + 0.5)
                    heights = shown[:, di] - bottom
                    ok = np.isfinite(heights)
                    bars = ax.bar(
                        xs[ok],
                        heights[ok],
                        width=width * 0.95,
                        bottom=bottom,
                        color=palette[di],
                        label=d if k == 0 else None,
                        edgecolor="white",
                        linewidth=0.5,
                    )
                    ax.bar_label(
                        bars,
                        labels=[_compact(v) for v in vals[ok, di]],
                        fontsize=7,
                        padding=2,
                        rotation=90 if len(datasets) * len(methods) > 8 else 0,
                    )
                if log:
                    ax.set_yscale("log")
                    ax.set_ylim(bottom, 10.0 ** (hi_exp + 1))
                    ax.set_ylabel(f"{_label(metric)}\n(log; floored at {LOG_FLOOR:.0e})")
                else:
                    if finite.size:
                        top = max(float(np.nanmax(finite)), 0.0)
                        low = min(float(np.nanmin(finite)), 0.0)
                        span = (top - low) or 1.0
                        ax.set_ylim(low - (0.05 * span if low < 0 else 0), top + 0.18 * span)
                    ax.set_ylabel(_label(metric))
                ax.set_title(metric, fontweight="bold")
                ax.set_xticks(x)
                ax.set_xticklabels(methods, rotation=25 if len(methods) > 4 else 0, ha="right" if len(methods) > 4 else "center")
                ax.set_xlabel("")
                ax.set_xlim(-0.6, len(methods) - 0.4)
            for k in range(n, nrows * ncols):
                axes[k // ncols][k % ncols].set_visible(False)
            handles, labels = axes[0][0].get_legend_handles_labels()
            fig_h = 3.6 * nrows
            fig.suptitle("Evaluation metrics by method", fontsize=13, fontweight="bold", y=1.0 - 0.05 / fig_h, va="top")
            fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.45 / fig_h))
            if handles:
                fig.legend(
                    handles,
                    labels,
                    title=None,
                    loc="upper center",
                    ncol=min(len(datasets), 6),
                    frameon=False,
                    fontsize=9,
                    bbox_to_anchor=(0.5, 1.0 - 0.35 / fig_h),
                    handlelength=1.2,
                )
            save_atomic(fig, path)
        finally:
            plt.close(fig)


def perception_distortion(metrics: pd.DataFrame, path: Path, dataset: str) -> None:
    """Held-out cross-entropy (bits/dim, lower = more likely) against PSNR (dB), one point per method.

    The perception–distortion picture: pixel losses sit at high PSNR, sharp (GAN) outputs at lower
    PSNR; the horizontal line is the real HR images' cross-entropy. Under a likelihood model blurry
    outputs are expected to look *more* likely than real data (paper App. E), so read the y-axis as
    "what the density model prefers", not as quality.
    """
    rows = metrics[(metrics["dataset"] == dataset)]
    wide = rows.pivot_table(index="method", columns="metric", values="value", aggfunc="mean", sort=False)
    if "cross_entropy" not in wide.columns or "psnr" not in wide.columns:
        raise ValueError(f"perception_distortion: {dataset} needs both psnr and cross_entropy metrics")
    points = wide.dropna(subset=["psnr", "cross_entropy"])
    if points.empty:
        raise ValueError(f"perception_distortion: no method of {dataset} has both psnr and cross_entropy")
    with style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        try:
            palette = sns.color_palette("tab10", len(points))
            for (method, row), color in zip(points.iterrows(), palette):
                ax.scatter(row["psnr"], row["cross_entropy"], s=60, color=color, zorder=3)
                ax.annotate(str(method), (row["psnr"], row["cross_entropy"]), xytext=(5, 4),
                            textcoords="offset points", fontsize=9)
            if "hr" in wide.index and np.isfinite(wide.loc["hr", "cross_entropy"]):
                ax.axhline(wide.loc["hr", "cross_entropy"], color="0.3", ls="--", lw=1)
                ax.annotate("real HR images", (ax.get_xlim()[0], wide.loc["hr", "cross_entropy"]),
                            xytext=(4, 4), textcoords="offset points", fontsize=9, color="0.3")
            ax.set_xlabel("PSNR (dB) → less distortion")
            ax.set_ylabel("held-out cross-entropy (bits/dim) ↓ more likely")
            ax.set_title(f"{dataset}: likelihood vs distortion", fontweight="bold")
            save_atomic(fig, path)
        finally:
            plt.close(fig)
