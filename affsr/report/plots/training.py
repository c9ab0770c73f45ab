"""Training curves: every run's loss log (the CSV the training loop writes), one panel per run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from affsr.report.plots.common import ordered_unique, save_atomic, style

__all__ = ["training_curves", "NOT_PLOTTED"]

# Bookkeeping columns of the loss log that are not training signals.
NOT_PLOTTED = ("seconds",)


def _tick_g(v: float, _pos: object = None) -> str:
    """Plain '%g' tick labels (0.3, 2, 1e-05) instead of 2x10^0 on log axes."""
    return f"{v:g}"


def _minor_tick_g(ax: plt.Axes):
    """Minor log-tick labels at 2, 3, 5 x 10^k, only when the axis spans < ~1.5 decades."""

    def fmt(v: float, _pos: object = None) -> str:
        lo, hi = ax.get_ylim()
        if lo <= 0 or hi / lo > 30:
            return ""
        mant = round(v / 10 ** math.floor(math.log10(v)), 6)
        return f"{v:g}" if mant in (2.0, 3.0, 5.0) else ""

    return fmt


def training_curves(logs: dict[str, pd.DataFrame], path: Path) -> None:
    """Training-loss curves: one subplot per run, each ``loss_*`` column vs ``step``.

    Each loss is drawn as a faint raw line plus a bold rolling-mean line (window ~ 1/25 of the
    run, at least 1). The y-axis is log only if every plotted loss value is positive. Other
    numeric columns (e.g. ``instance_noise``) are drawn dotted on a twin right-hand axis.
    Colours are consistent per loss name across runs.
    """
    if not isinstance(logs, Mapping) or not logs:
        raise ValueError("training_curves: `logs` is empty; need at least one run")
    prepared: dict[str, tuple[pd.DataFrame, list[str], list[str]]] = {}
    for run, df in logs.items():
        if not isinstance(df, pd.DataFrame):
            raise ValueError(f"training_curves: log for run {run!r} is not a DataFrame")
        if df.empty:
            raise ValueError(f"training_curves: log for run {run!r} is empty")
        if "step" not in df.columns:
            raise ValueError(f"training_curves: log for run {run!r} has no 'step' column")
        loss_cols = [c for c in df.columns if isinstance(c, str) and c.startswith("loss_")]
        if not loss_cols:
            raise ValueError(
                f"training_curves: log for run {run!r} has no 'loss_*' columns (columns: {list(df.columns)})"
            )
        d = df.copy()
        d["step"] = pd.to_numeric(d["step"], errors="coerce")
        d = d.dropna(subset=["step"]).sort_values("step")
        for c in loss_cols:
            d[c] = pd.to_numeric(d[c], errors="coerce")
        if d.empty or d[loss_cols].notna().to_numpy().sum() == 0:
            raise ValueError(f"training_curves: log for run {run!r} has no numeric loss values")
        extra = [
            c
            for c in d.columns
            if c not in ("step", *NOT_PLOTTED) and c not in loss_cols
            and pd.api.types.is_numeric_dtype(d[c])
            and d[c].notna().any()
        ]
        prepared[str(run)] = (d, loss_cols, extra)

    all_losses = ordered_unique([c for _, lc, _ in prepared.values() for c in lc])
    all_extra = ordered_unique([c for _, _, ex in prepared.values() for c in ex])
    loss_colors = dict(zip(all_losses, sns.color_palette("deep", max(len(all_losses), 1))))
    extra_colors = dict(zip(all_extra, sns.color_palette("dark", max(len(all_extra), 1))[::-1]))

    n = len(prepared)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    with style("whitegrid"):
        fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.7 * nrows), squeeze=False)
        try:
            for k, (run, (d, loss_cols, extra)) in enumerate(prepared.items()):
                ax = axes[k // ncols][k % ncols]
                step = d["step"].to_numpy(dtype=float)
                window = max(1, len(d) // 25)
                vals = d[loss_cols].to_numpy(dtype=float)
                fin = vals[np.isfinite(vals)]
                use_log = fin.size > 0 and bool(np.all(fin > 0))
                for c in loss_cols:
                    y = d[c]
                    label = c[len("loss_"):] or c
                    ax.plot(step, y.to_numpy(dtype=float), color=loss_colors[c], alpha=0.25, lw=0.8)
                    smooth = y.rolling(window, min_periods=1).mean().to_numpy(dtype=float)
                    ax.plot(step, smooth, color=loss_colors[c], lw=1.8, label=label)
                if use_log:
                    ax.set_yscale("log")
                    ax.yaxis.set_major_formatter(mticker.FuncFormatter(_tick_g))
                    ax.yaxis.set_minor_formatter(mticker.FuncFormatter(_minor_tick_g(ax)))
                ax.set_xlabel("step")
                ax.set_ylabel("loss" + (" (log)" if use_log else ""))
                ax.set_title(run, fontweight="bold")
                handles, labels = ax.get_legend_handles_labels()
                if extra:
                    ax2 = ax.twinx()
                    for c in extra:
                        ax2.plot(step, d[c].to_numpy(dtype=float), color=extra_colors[c], lw=1.2, ls=":", label=c)
                    ax2.set_ylabel(", ".join(extra) if len(extra) <= 2 else "other (dotted)", fontsize=9)
                    ax2.grid(False)
                    h2, l2 = ax2.get_legend_handles_labels()
                    handles, labels = handles + h2, labels + l2
                ax.legend(handles, labels, fontsize=8, loc="best", framealpha=0.85)
            for k in range(n, nrows * ncols):
                axes[k // ncols][k % ncols].set_visible(False)
            fig.suptitle(
                "Training curves (faint: raw; bold: rolling mean)", fontsize=13, fontweight="bold"
            )
            fig.tight_layout()
            save_atomic(fig, path)
        finally:
            plt.close(fig)
