"""Image figures: the paper-style comparison grid of methods' outputs, and several draws per LR input.

Arrays are (N, C, H, W) floats in [0, 1] (clipped for display only) with C = 1 (grey) or 3 (RGB); the LR
input is shown at the HR size with each LR pixel centred where A samples it (:func:`_upscale_nearest`),
so all panels align. Bad shapes raise ValueError before anything is drawn.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.patches as mpatches
import matplotlib.pyplot as plt
import numpy as np

from affsr.report.plots.common import save_atomic, style

__all__ = ["sample_grid", "draws_figure"]


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
    with style("white"):
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
            save_atomic(fig, path)
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
    with style("white"):
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
            save_atomic(fig, path)
        finally:
            plt.close(fig)
