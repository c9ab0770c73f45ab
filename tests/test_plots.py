"""Tests for the affsr.plots package: the drawing functions are importable from the package, as callers
(the CLI, the toy, the tests) use them, and matplotlib draws off-screen."""

from __future__ import annotations

import matplotlib

from affsr import plots
from affsr.plots import metrics, samples, study, toy, training


def test_public_functions_are_reexported_from_their_modules() -> None:
    expected = {
        "sample_grid": samples, "draws_figure": samples, "metrics_plot": metrics,
        "perception_distortion": metrics, "training_curves": training, "toy_figure": toy,
        "study_figures": study, "dataset_figures": study,
    }
    for name, module in expected.items():
        assert getattr(plots, name) is getattr(module, name), name
    assert set(expected) <= set(plots.__all__)
    assert plots.LOG_FLOOR == metrics.LOG_FLOOR and plots.METRIC_ORDER[0] == "psnr"


def test_backend_is_non_interactive() -> None:
    assert matplotlib.get_backend().lower() == "agg"
