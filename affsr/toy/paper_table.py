"""The paper's Table 1 (§5.1) as numbers, and the rows of ours beyond it: what the toy's results are
held against (the printed table: :mod:`affsr.report.toy_table`; the verdicts: :mod:`affsr.report.claims`)."""

from __future__ import annotations

import math

#: Rows of ours beyond the paper's: the Bayes-optimal estimators under squared error (what MSE training
#: should approach) and absolute error (MAE's), by brute force along each solution line like the MAP
#: (:func:`line_estimates`), scored on the same draws. They tell a net that has not converged from a
#: loss whose optimum itself sits off the roll. No paper values ("–").
BAYES_ROWS = ("posterior_mean", "posterior_median")

#: Table 1 of the paper: H[q_θ, p_Y] (nats, presumably) and ℓ_MSE(x, Aŷ); NaN where the paper has "–".
PAPER_TABLE1: dict[str, dict[str, float]] = {
    "map": {"cross_entropy": 3.15, "lr_mse": math.nan},
    "mse": {"cross_entropy": 9.10, "lr_mse": 1.25e-2},
    "mae": {"cross_entropy": 6.30, "lr_mse": 4.04e-2},
    "affgan": {"cross_entropy": 4.10, "lr_mse": 0.0},
    "softgan": {"cross_entropy": 4.25, "lr_mse": 8.87e-2},
    "affdg": {"cross_entropy": 3.81, "lr_mse": 0.0},
    "softdg": {"cross_entropy": 4.19, "lr_mse": 1.01e-1},
}
