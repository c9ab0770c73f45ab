"""Figures of affsr, one module per subject; the drawing functions are re-exported here.

* :mod:`~affsr.report.plots.samples` — sample grids (LR | outputs | HR) and several draws per input
* :mod:`~affsr.report.plots.metrics` — metric bar charts and the perception–distortion plot
* :mod:`~affsr.report.plots.training` — training-loss curves
* :mod:`~affsr.report.plots.toy` — the 2-D toy's Figure 1
* :mod:`~affsr.report.plots.study` — the image study's figures from its files (what ``affsr figures`` draws)
* :mod:`~affsr.report.plots.common` — theme, resolution and atomic PNG writing shared by all of them

Every drawing function except those of :mod:`~affsr.report.plots.study` is pure: it takes arrays / DataFrames
plus an output path, draws one figure and writes it as a PNG atomically, creating parent folders as
needed; nothing there reads parameter or data files. Matplotlib runs on the non-interactive "Agg" backend,
selected here before any submodule imports pyplot.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from affsr.report.plots.metrics import LOG_FLOOR, metrics_plot, perception_distortion  # noqa: E402
from affsr.report.plots.samples import draws_figure, sample_grid  # noqa: E402
from affsr.report.plots.study import dataset_figures, study_figures  # noqa: E402
from affsr.report.plots.toy import TOY_COLORS, toy_figure  # noqa: E402
from affsr.report.plots.training import training_curves  # noqa: E402

__all__ = [
    "sample_grid",
    "draws_figure",
    "metrics_plot",
    "perception_distortion",
    "training_curves",
    "toy_figure",
    "study_figures",
    "dataset_figures",
    "LOG_FLOOR",
    "TOY_COLORS",
]
