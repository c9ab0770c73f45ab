"""The paper's Figure 1 for the 2-D toy (§5.1): the Swiss-roll prior, the posterior along one solution
line with its point estimates, and each method's outputs ŷ(x)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np

from affsr.report.display_names import display_name
from affsr.report.plots.common import save_atomic, style

__all__ = ["toy_figure", "TOY_COLORS"]

#: Colours of the toy's methods (fixed, so panels and runs agree).
TOY_COLORS = {"map": "#1f77b4", "mse": "#2ca02c", "mae": "#9467bd", "affgan": "#d62728", "softgan": "#ff7f0e",
              "affdg": "#17becf", "softdg": "#8c564b"}


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
        name = display_name(method)
        h = entropy.get(method)
        return f"{name} (H = {h:.2f})" if h is not None and np.isfinite(h) else name

    lim = 10.0
    with style("white"):
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
            save_atomic(fig, path)
        finally:
            plt.close(fig)
