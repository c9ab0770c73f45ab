"""Plotting helpers for affsr: sample grids, metric bar charts, training curves.

Every function here is pure: it takes arrays / DataFrames plus an output path,
draws one figure and writes it as a PNG *atomically* (temp file in the same
folder, then ``os.replace``), creating parent folders as needed. Nothing here
reads parameter or data files. Matplotlib runs on the non-interactive "Agg"
backend; seaborn styling is applied through context managers so importing this
module does not change global rcParams.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.patches as mpatches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from affsr.files import atomic_write  # noqa: E402

__all__ = ["sample_grid", "metrics_plot", "training_curves", "draws_figure", "LOG_FLOOR", "METRIC_ORDER"]

DPI = 150
#: Metrics drawn first, in this order; any other metric follows in order of appearance.
METRIC_ORDER: tuple[str, ...] = ("psnr", "ssim", "lr_mse", "lr_rel", "lr_psnr", "spectrum_distance", "swd",
                                "c2st")
#: Metrics drawn on a log y-axis.
LOG_METRICS: frozenset[str] = frozenset({"lr_mse", "lr_rel"})
#: Display floor for log-scale metrics (exact zeros / ~1e-14 values are shown at this level).
LOG_FLOOR = 1e-16
METRIC_LABELS = {
    "psnr": "PSNR (dB) ↑",
    "ssim": "SSIM ↑",
    "lr_mse": "LR-consistency MSE ↓",
    "lr_rel": "LR-consistency rel. error ↓",
}


# Bookkeeping columns of the loss log that are not training signals.
NOT_PLOTTED = ("seconds",)

# --------------------------------------------------------------------------- helpers


def _save_atomic(fig: Figure, path: Path | str) -> None:
    """Write ``fig`` to ``path`` as PNG, atomically."""
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=DPI, bbox_inches="tight",
                                                  facecolor="white"))


@contextmanager
def _style(style: str = "whitegrid") -> Iterator[None]:
    """Seaborn theme for the duration of one figure (no global side effects)."""
    with sns.axes_style(style), sns.plotting_context("notebook", font_scale=0.9):
        yield


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


def _as_images(name: str, arr: object) -> np.ndarray:
    """Convert to a float (N, C, H, W) numpy array with C in {1, 3}; raise ValueError otherwise."""
    if hasattr(arr, "detach"):  # torch tensor
        arr = arr.detach().cpu().numpy()  # type: ignore[union-attr]
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D (N, C, H, W) array, got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name}: no images (N = 0)")
    if a.shape[1] not in (1, 3):
        raise ValueError(f"{name}: channel count must be 1 (grey) or 3 (RGB), got {a.shape[1]}")
    if a.shape[2] == 0 or a.shape[3] == 0:
        raise ValueError(f"{name}: empty spatial size {a.shape[2:]}")
    return a


def _upscale_nearest(img: np.ndarray, H: int, W: int) -> np.ndarray:
    """Nearest-neighbour display of a (C, h, w) LR image at (C, H, W), on A's sampling grid (any ratio).

    A centres LR pixel i on HR pixel s·i (s = H/h), so HR pixel j shows the LR pixel nearest to it,
    floor(j/s + ½) mod h (circular, like A): for s = 4, LR pixel i covers HR pixels s·i − 2 … s·i + 1, the
    first two HR columns show LR column 0 and the last two wrap round to it too. For an integer s this is
    np.roll of the s-fold repeated image by −(s // 2) along both axes.
    """
    _, h, w = img.shape
    ri = ((2 * np.arange(H) * h + H) // (2 * H)) % h
    ci = ((2 * np.arange(W) * w + W) // (2 * W)) % w
    return img[:, ri][:, :, ci]


def _show(ax: plt.Axes, img: np.ndarray) -> None:
    """Show a (C, H, W) image clipped to [0, 1] (display only), no ticks."""
    disp = np.clip(np.nan_to_num(img, nan=0.0), 0.0, 1.0)
    if disp.shape[0] == 1:
        ax.imshow(disp[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(disp.transpose(1, 2, 0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def _ordered_unique(values: Sequence[object]) -> list:
    return list(dict.fromkeys(values))


# --------------------------------------------------------------------------- 1. sample grid


def sample_grid(
    lr: np.ndarray,
    hr: np.ndarray,
    outputs: dict[str, np.ndarray],
    path: Path,
    title: str = "",
    max_rows: int = 6,
) -> None:
    """Paper-style comparison grid: rows = test images, columns = LR | each output | HR.

    ``lr`` is (N, C, h, w), ``hr`` and every array in ``outputs`` are (N, C, H, W), floats in
    [0, 1] (clipped for display only), C = 1 (grey) or 3 (RGB). The LR input is shown with
    nearest-neighbour upscaling to the HR size, each LR pixel centred where A samples it (HR pixel s·i),
    so all panels align. Below the grid a zoom row
    shows the centre crop (half height x half width) of the first image for every column, so
    differences in sharpness are visible; the crop region is outlined on the first HR panel.
    """
    if not outputs:
        raise ValueError("sample_grid: `outputs` is empty; need at least one method's images")
    if max_rows < 1:
        raise ValueError(f"sample_grid: max_rows must be >= 1, got {max_rows}")
    lr_a = _as_images("lr", lr)
    hr_a = _as_images("hr", hr)
    N, C, H, W = hr_a.shape
    if lr_a.shape[0] != N:
        raise ValueError(f"sample_grid: lr has {lr_a.shape[0]} images but hr has {N}")
    if lr_a.shape[1] != C:
        raise ValueError(f"sample_grid: lr has {lr_a.shape[1]} channels but hr has {C}")
    if lr_a.shape[2] > H or lr_a.shape[3] > W:
        raise ValueError(f"sample_grid: lr spatial size {lr_a.shape[2:]} exceeds hr size {(H, W)}")
    outs: dict[str, np.ndarray] = {}
    for name, arr in outputs.items():
        a = _as_images(f"outputs[{name!r}]", arr)
        if a.shape != hr_a.shape:
            raise ValueError(
                f"sample_grid: outputs[{name!r}] has shape {a.shape}, expected hr's shape {hr_a.shape}"
            )
        outs[str(name)] = a

    n_rows = min(N, max_rows)
    columns: list[tuple[str, np.ndarray]] = [("LR", lr_a)] + list(outs.items()) + [("HR", hr_a)]
    n_cols = len(columns)

    def panel(col_arr: np.ndarray, i: int) -> np.ndarray:
        img = col_arr[i]
        return _upscale_nearest(img, H, W) if img.shape[1:] != (H, W) else img

    # centre crop: half the height and half the width (a quarter of the area)
    ch, cw = max(1, H // 2), max(1, W // 2)
    r0, c0 = (H - ch) // 2, (W - cw) // 2

    panel_w = 1.9
    panel_h = panel_w * H / W
    spacer = 0.12
    grid_h = panel_h * (n_rows + 1 + spacer) * 1.04
    head = 0.35 + (0.45 if title else 0.0)  # inches above the grid: column titles (+ suptitle)
    fig_h = grid_h + head + 0.05
    with _style("white"):
        fig = plt.figure(figsize=(panel_w * n_cols + 0.4, fig_h))
        try:
            gs = fig.add_gridspec(
                n_rows + 2,
                n_cols,
                height_ratios=[1.0] * n_rows + [spacer, 1.0],
                wspace=0.04,
                hspace=0.04,
                left=0.0,
                right=1.0,
                bottom=0.05 / fig_h,
                top=1.0 - head / fig_h,
            )
            for i in range(n_rows):
                for j, (name, arr) in enumerate(columns):
                    ax = fig.add_subplot(gs[i, j])
                    _show(ax, panel(arr, i))
                    if i == 0:
                        ax.set_title(name, fontsize=11, fontweight="bold")
                    if j == 0:
                        ax.set_ylabel(f"#{i}", fontsize=9, rotation=0, ha="right", va="center")
                    if i == 0 and name == "HR" and (ch, cw) != (H, W):
                        ax.add_patch(
                            mpatches.Rectangle(
                                (c0 - 0.5, r0 - 0.5), cw, ch, fill=False, ec="#ffcc00", lw=1.0, ls="--"
                            )
                        )
            for j, (name, arr) in enumerate(columns):
                ax = fig.add_subplot(gs[n_rows + 1, j])
                crop = panel(arr, 0)[:, r0 : r0 + ch, c0 : c0 + cw]
                _show(ax, crop)
                for s in ax.spines.values():
                    s.set_visible(True)
                    s.set_edgecolor("#ffcc00")
                    s.set_linewidth(1.2)
                if j == 0:
                    ax.set_ylabel("#0 zoom\n(centre)", fontsize=9, rotation=0, ha="right", va="center")
            if title:
                fig.suptitle(title, fontsize=13, fontweight="bold", y=1.0 - 0.08 / fig_h, va="top")
            _save_atomic(fig, path)
        finally:
            plt.close(fig)


# --------------------------------------------------------------------------- 2. metrics


def metrics_plot(metrics: pd.DataFrame, path: Path) -> None:
    """Bar charts of evaluation metrics: one panel per metric, bars = methods, hue = dataset.

    ``metrics`` is a tidy table with columns dataset, method, metric, value (duplicates are
    averaged). Panels follow METRIC_ORDER (psnr, ssim, lr_mse, lr_rel) then any other metric.
    lr_mse / lr_rel use a log y-axis with values floored at LOG_FLOOR for display (the axis
    label says so); bar annotations show the unfloored value.
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

    present = _ordered_unique(df["metric"].tolist())
    order = [m for m in METRIC_ORDER if m in present] + [m for m in present if m not in METRIC_ORDER]
    methods = _ordered_unique(df["method"].tolist())
    datasets = _ordered_unique(df["dataset"].tolist())
    table = df.groupby(["metric", "method", "dataset"], sort=False)["value"].mean()

    n = len(order)
    bars = len(methods) * max(1, len(datasets))
    panel_w = max(4.2, (0.55 if len(datasets) == 1 else 0.32) * bars + 1.5)
    # Panels side by side while the figure stays ≤ ~24 in wide; many bars (3 domains × 12 methods) → one column.
    ncols = max(1, min(n, 3 if n > 4 else 2, int(24 // panel_w)))
    nrows = math.ceil(n / ncols)
    palette = sns.color_palette("deep", len(datasets))
    with _style("whitegrid"):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(panel_w * ncols, 3.6 * nrows), squeeze=False
        )
        try:
            width = 0.8 / len(datasets)
            x = np.arange(len(methods))
            for k, metric in enumerate(order):
                ax = axes[k // ncols][k % ncols]
                log = metric in LOG_METRICS
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
                    ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)}\n(log; floored at {LOG_FLOOR:.0e})")
                else:
                    if finite.size:
                        top = max(float(np.nanmax(finite)), 0.0)
                        low = min(float(np.nanmin(finite)), 0.0)
                        span = (top - low) or 1.0
                        ax.set_ylim(low - (0.05 * span if low < 0 else 0), top + 0.18 * span)
                    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
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
            _save_atomic(fig, path)
        finally:
            plt.close(fig)


# --------------------------------------------------------------------------- 3. training curves


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
    with _style("whitegrid"):
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
            _save_atomic(fig, path)
        finally:
            plt.close(fig)


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

    all_losses = _ordered_unique([c for _, lc, _ in prepared.values() for c in lc])
    all_extra = _ordered_unique([c for _, _, ex in prepared.values() for c in ex])
    loss_colors = dict(zip(all_losses, sns.color_palette("deep", max(len(all_losses), 1))))
    extra_colors = dict(zip(all_extra, sns.color_palette("dark", max(len(all_extra), 1))[::-1]))

    n = len(prepared)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    with _style("whitegrid"):
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
            _save_atomic(fig, path)
        finally:
            plt.close(fig)


# --------------------------------------------------------------------------- 4. the 2-D toy (Fig. 1)

#: Colours of the toy's methods (fixed, so panels and runs agree).
TOY_COLORS = {"map": "#1f77b4", "mse": "#2ca02c", "mae": "#9467bd", "affgan": "#d62728", "softgan": "#ff7f0e",
              "affdg": "#17becf", "softdg": "#8c564b"}
TOY_NAMES = {"map": "MAP", "mse": "MSE", "mae": "MAE", "affgan": "AffGAN", "softgan": "SoftGAN",
             "affdg": "AffDG", "softdg": "SoftDG"}


def _split_jumps(y: np.ndarray, gap: float) -> np.ndarray:
    """Insert NaN rows where consecutive points are more than ``gap`` apart (no lines across jumps)."""
    if len(y) < 2:
        return y
    jumps = np.flatnonzero(np.linalg.norm(np.diff(y, axis=0), axis=1) > gap) + 1
    return np.insert(y.astype(float), jumps, np.nan, axis=0)


def toy_figure(data: Mapping, path: Path | str) -> None:
    """The paper's Figure 1 for the 2-D toy, as two panels (``data`` from :func:`affsr.toy.run_toy_study`).

    (a) the Swiss-roll prior (grey), the solution line {y : Ay = x} for x = 0.5 with the posterior's
    magnitude along it (red, drawn as a bump off the line), the posterior mean (MSE's Bayes estimate),
    median (MAE's) and mode (MAP) for that x, and the brute-force MAP estimates for x ∈ [−8, 8].
    (b) each method's outputs ŷ(x) for x ∈ [−8, 8] (first restart) over the prior and, when present,
    the trained denoiser's score field (D(y) − y)/σ² as a light quiver; bold where x lies in
    ``data["x_typical"]`` (the central 99 % of p_X), faint where the networks extrapolate. Legends give
    H[q, p] in nats (mean over restarts).
    """
    for key in ("prior", "line", "map_curve", "outputs"):
        if key not in data:
            raise ValueError(f"toy_figure: data has no '{key}' (expected the dict of affsr.toy.run_toy_study)")
    prior = np.asarray(data["prior"], dtype=float)
    line = data["line"]
    entropy = data.get("cross_entropy", {})

    def label(method: str) -> str:
        name = TOY_NAMES.get(method, method)
        h = entropy.get(method)
        return f"{name} (H = {h:.2f})" if h is not None and np.isfinite(h) else name

    lim = 10.0
    with _style("white"):
        fig, axes = plt.subplots(1, 2, figsize=(12.5, 6.2))
        try:
            for ax in axes:
                ax.scatter(prior[:, 0], prior[:, 1], s=2, c="0.75", lw=0, rasterized=True, zorder=1)
                ax.set_xlim(-lim, lim)
                ax.set_ylim(-lim, lim)
                ax.set_aspect("equal")
                ax.set_xlabel("$y_1$")
                ax.set_ylabel("$y_2$")
            ax = axes[0]
            points = np.asarray(line["points"], dtype=float)
            logp = np.asarray(line["log_density"], dtype=float)
            ax.plot(points[:, 0], points[:, 1], color="k", lw=0.8, zorder=2,
                    label=f"solution line, x = {line['x']:g}")
            magnitude = np.exp(logp - np.nanmax(logp))
            normal = np.array([1.0, 1.0]) / np.sqrt(2.0)
            bump = points + 3.0 * magnitude[:, None] * normal[None, :]
            ax.fill(np.r_[points[:, 0], bump[::-1, 0]], np.r_[points[:, 1], bump[::-1, 1]], color="#d62728",
                    alpha=0.35, lw=0, zorder=2)
            visible = np.where(magnitude[:, None] > 1e-3, bump, np.nan)  # no red over the bare line
            ax.plot(visible[:, 0], visible[:, 1], color="#d62728", lw=1.2, zorder=3,
                    label="posterior p(y | x) (scaled)")
            curve = np.asarray(data["map_curve"]["y"], dtype=float)
            ax.scatter(curve[:, 0], curve[:, 1], s=6, color=TOY_COLORS["map"], zorder=4,
                       label="MAP for x ∈ [−8, 8]")
            markers = {"mse": ("o", "MSE (posterior mean)"), "mae": ("s", "MAE (posterior median)"),
                       "map": ("*", "MAP (posterior mode)")}
            for key, (marker, name) in markers.items():
                if key in line.get("estimates", {}):
                    p = np.asarray(line["estimates"][key], dtype=float)
                    ax.scatter([p[0]], [p[1]], marker=marker, s=170 if marker == "*" else 70,
                               color=TOY_COLORS[key], edgecolor="k", lw=0.8, zorder=6, label=f"{name}, x = {line['x']:g}")
            ax.set_title("(a) prior, posterior along Ay = 0.5, point estimates", fontweight="bold")
            ax.legend(loc="lower left", fontsize=8, framealpha=0.9)

            ax = axes[1]
            field = data.get("score_field")
            if field:
                pts = np.asarray(field["points"], dtype=float)
                vec = np.asarray(field["vectors"], dtype=float)
                norm = np.linalg.norm(vec, axis=1, keepdims=True)
                unit = vec / np.maximum(norm, 1e-12) * np.minimum(norm, np.percentile(norm, 90))[:, :] / max(
                    np.percentile(norm, 90), 1e-12)
                ax.quiver(pts[:, 0], pts[:, 1], unit[:, 0], unit[:, 1], color="0.55", alpha=0.6, width=0.0025,
                          scale=30, zorder=1.5)
            lo, hi = data.get("x_typical", (-np.inf, np.inf))
            for method, out in data["outputs"].items():
                y = np.asarray(out["y"], dtype=float)
                x = np.asarray(out["x"], dtype=float)
                color = TOY_COLORS.get(method)
                typical = (x >= lo) & (x <= hi)
                ax.plot(*_split_jumps(y, 1.0).T, color=color, lw=0.9, alpha=0.45, zorder=3)
                ax.plot(*_split_jumps(np.where(typical[:, None], y, np.nan), 1.0).T, color=color, lw=2.0,
                        zorder=4, label=label(method))
            ax.plot(*_split_jumps(curve, 1.0).T, color="k", lw=0.9, ls=":", zorder=5, label=label("map"))
            title = "(b) outputs ŷ(x), x ∈ [−8, 8]"
            if field:
                title += f"; denoiser score field (σ = {field.get('sigma', float('nan')):.2g})"
            ax.set_title(title, fontweight="bold")
            ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
            fig.tight_layout()
            _save_atomic(fig, path)
        finally:
            plt.close(fig)


def draws_figure(lr: np.ndarray, hr: np.ndarray, draws: np.ndarray, path: Path | str, title: str) -> None:
    """Several answers per LR input: rows = inputs; columns = LR · draw 1 … K · per-pixel spread · HR.

    lr (N, C, h, w), hr (N, C, H, W), draws (N, K, C, H, W), all on [0, 1]. The spread column is the
    standard deviation across draws (mean over channels), on its own colour scale shared by all rows:
    where the draws disagree is where the LR image leaves the answer open.
    """
    lr, hr = _as_images("lr", lr), _as_images("hr", hr)
    d = np.asarray(draws, dtype=np.float64)
    if d.ndim != 5 or d.shape[0] != hr.shape[0] or d.shape[2:] != hr.shape[1:]:
        raise ValueError(f"draws: expected (N, K, C, H, W) matching hr {hr.shape}, got {d.shape}")
    n, k = d.shape[:2]
    spread = d.std(axis=1).mean(axis=1)  # (N, H, W)
    top = float(spread.max()) or 1.0
    cols = 1 + k + 2
    with _style("white"):
        fig, axes = plt.subplots(n, cols, figsize=(1.7 * cols, 1.75 * n + 0.6), squeeze=False)
        try:
            for i in range(n):
                _show(axes[i][0], _upscale_nearest(lr[i], *hr.shape[2:]))
                for j in range(k):
                    _show(axes[i][1 + j], d[i, j])
                axes[i][1 + k].imshow(spread[i], cmap="magma", vmin=0.0, vmax=top, interpolation="nearest")
                axes[i][1 + k].set_xticks([])
                axes[i][1 + k].set_yticks([])
                _show(axes[i][2 + k], hr[i])
            labels = ["LR"] + [f"draw {j + 1}" for j in range(k)] + [f"spread (std, 0–{top:.2f})", "HR"]
            for ax, label in zip(axes[0], labels):
                ax.set_title(label, fontsize=9)
            fig.suptitle(title, fontsize=10, fontweight="bold")
            fig.tight_layout()
            _save_atomic(fig, path)
        finally:
            plt.close(fig)
