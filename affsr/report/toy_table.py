"""The toy's Table 1 beside the paper's, as Markdown (``results/toy/table1.md``)."""

from __future__ import annotations

import math

import pandas as pd

from affsr.report.display_names import display_name
from affsr.report.tables import markdown_table
from affsr.toy.paper_table import PAPER_TABLE1


def table1(results: pd.DataFrame) -> pd.DataFrame:
    """Our Table 1 beside the paper's: one row per model (paper order, then any other of ours).

    Numeric columns ``cross_entropy``, ``cross_entropy_std``, ``paper_cross_entropy``, ``lr_mse``,
    ``lr_mse_std``, ``paper_lr_mse``, ``cross_entropy_median`` (NaN where absent), and the printable
    ``H ours`` / ``ℓ_MSE ours`` as "mean ± std".
    """
    required = {"method", "metric", "value"}
    if not required <= set(results.columns):
        raise ValueError(f"table1: results need columns {sorted(required)}, got {list(results.columns)}")
    wide = results.pivot_table(index="method", columns="metric", values="value", aggfunc="mean")
    order = list(PAPER_TABLE1) + [m for m in wide.index if m not in PAPER_TABLE1]
    rows = []
    for method in order:
        ours = wide.loc[method] if method in wide.index else pd.Series(dtype=float)
        paper = PAPER_TABLE1.get(method, {})
        row = {"model": display_name(method)}
        for metric in ("cross_entropy", "lr_mse"):
            row[metric] = float(ours.get(metric, math.nan))
            row[f"{metric}_std"] = float(ours.get(f"{metric}_std", math.nan))
            row[f"paper_{metric}"] = float(paper.get(metric, math.nan))
        row["cross_entropy_median"] = float(ours.get("cross_entropy_median", math.nan))
        rows.append(row)
    table = pd.DataFrame(rows)
    table["H ours"] = [_pm(m, s, "{:.2f}") for m, s in zip(table["cross_entropy"], table["cross_entropy_std"])]
    table["ℓ_MSE ours"] = [_pm(m, s, "{:.2e}") for m, s in zip(table["lr_mse"], table["lr_mse_std"])]
    return table.set_index("model")


def _pm(mean: float, std: float, fmt: str) -> str:
    if not math.isfinite(mean):
        return "–"
    return fmt.format(mean) + ("" if not math.isfinite(std) else " ± " + fmt.format(std))


def table1_markdown(results: pd.DataFrame) -> str:
    """results/toy/table1.md: our Table 1 (mean ± std over restarts) beside the paper's."""
    table = table1(results).reset_index()
    shown = pd.DataFrame({
        "model": table["model"],
        "H[q, p_Y] ours (nats)": table["H ours"],
        "H paper": table["paper_cross_entropy"].map(lambda v: "–" if pd.isna(v) else f"{v:.2f}"),
        "ℓ_MSE(x, Aŷ) ours": table["ℓ_MSE ours"],
        "ℓ_MSE paper": table["paper_lr_mse"].map(lambda v: "–" if pd.isna(v) else f"{v:.3g}"),
    })
    return ("# 2-D toy: the paper's Table 1 beside ours (mean ± std over restarts)\n\n"
            + markdown_table(shown) + "\n")
