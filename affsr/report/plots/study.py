"""The image study's figures from its files on disk: what ``affsr figures`` (the figures rule) draws.

Unlike the other plot modules, which draw the arrays they are given, this one reads: each data set's test
split (:func:`affsr.data.load_split`), the sample outputs ``affsr evaluate --samples`` saved
(``SAMPLES_DIR/DATASET/METHOD.npz`` with ``sr`` (N, C, H, W) and, for a stochastic generator, ``draws``
(N, K, C, H, W)), and the training loss logs (``LOGS_DIR/DATASET/*.csv``). Missing samples are a
:class:`affsr.errors.DataError` naming the file and the command that makes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from affsr.data.load import load_split
from affsr.errors import DataError
from affsr.report.plots.metrics import metrics_plot, perception_distortion
from affsr.report.plots.samples import draws_figure, sample_grid
from affsr.report.plots.training import training_curves

__all__ = ["study_figures", "dataset_figures"]

#: Column titles of the sample grid that differ from the params.yaml method name (the others keep it).
GRID_LABELS: dict[str, str] = {"pinv": "A⁺x"}


def study_figures(metrics: pd.DataFrame, data_dirs: Sequence[Path], methods: Sequence[str], samples_dir: Path,
                  logs_dir: Path, out_dir: Path, *, with_metrics: bool = True,
                  log_files: Sequence[Path] | None = None) -> None:
    """Every figure of the image study into ``out_dir``.

    ``metrics`` is the tidy table (dataset, method, metric, value) of one or more data sets; its toy rows
    are left out. With ``with_metrics``: ``metrics.png`` (:func:`metrics_plot`, every data set side by
    side). Then, for each folder of ``data_dirs``, the figures of :func:`dataset_figures`
    (``log_files``: the loss logs to draw; None: every log in ``logs_dir``/DATASET).
    """
    images = metrics[metrics["dataset"] != "toy"]  # the toy has its own figure (and nats, not bits)
    out_dir = Path(out_dir)
    if with_metrics:
        metrics_plot(images, out_dir / "metrics.png")
    for data_dir in data_dirs:
        dataset_figures(Path(data_dir), methods, Path(samples_dir), Path(logs_dir), images, out_dir,
                        log_files=log_files)


def dataset_figures(data_dir: Path, methods: Sequence[str], samples_dir: Path, logs_dir: Path,
                    metrics: pd.DataFrame, out_dir: Path, log_files: Sequence[Path] | None = None) -> None:
    """One data set's figures; the data set is named by its folder (``data_dir.name``, e.g. "grass").

    Writes ``samples_DATASET.png`` (:func:`sample_grid`: the test split's LR | each of ``methods`` | HR),
    ``draws_DATASET_METHOD.png`` for each method whose samples hold ``draws`` (:func:`draws_figure`, first
    4 inputs, titled with its diversity and lr_mse_draws from ``metrics``), ``training_DATASET.png`` if
    any non-empty loss log exists (:func:`training_curves`, auxiliary runs included; ``log_files`` if
    given — the workflow names the logs of this study's runs —, else every ``logs_dir``/DATASET/*.csv), and
    ``likelihood_DATASET.png`` if ``metrics`` has psnr and cross_entropy for it
    (:func:`perception_distortion`). Raises DataError if a method's samples file is missing.
    """
    if not methods:
        raise ValueError("dataset_figures: `methods` is empty; need at least one column for the sample grid")
    dataset = Path(data_dir).name
    lr, hr = load_split(Path(data_dir), "test")
    outputs = {}
    for name in methods:
        path = Path(samples_dir) / dataset / f"{name}.npz"
        if not path.exists():
            raise DataError(f"{path}: samples not found; run `affsr evaluate ... --samples {path}`")
        with np.load(path) as stored:
            outputs[GRID_LABELS.get(name, name)] = stored["sr"]
            if "draws" in stored.files:  # a stochastic generator: several answers per input
                row = metrics[(metrics["dataset"] == dataset) & (metrics["method"] == name)]
                value = row.set_index("metric")["value"]
                title = (f"{dataset}/{name}: {stored['draws'].shape[1]} draws per input; diversity "
                         f"{value.get('diversity', float('nan')):.3f} (RMS between draws), largest "
                         f"lr_mse of a draw {value.get('lr_mse_draws', float('nan')):.1e}")
                k = min(4, len(stored["draws"]))
                draws_figure(lr[:k].numpy(), hr[:k].numpy(), stored["draws"][:k],
                             Path(out_dir) / f"draws_{dataset}_{name}.png", title)
    n = min(len(v) for v in outputs.values())
    sample_grid(lr[:n].numpy(), hr[:n].numpy(), {k: v[:n] for k, v in outputs.items()},
                Path(out_dir) / f"samples_{dataset}.png", title=f"{dataset}: 4× super-resolution (test split)")
    paths = sorted((Path(logs_dir) / dataset).glob("*.csv")) if log_files is None else \
        [Path(p) for p in log_files if Path(p).parent.name == dataset]
    logs = _loss_logs(paths, prefix=f"{dataset}/")
    if logs:
        training_curves(logs, Path(out_dir) / f"training_{dataset}.png")
    if {"psnr", "cross_entropy"} <= set(metrics[metrics["dataset"] == dataset]["metric"]):
        perception_distortion(metrics, Path(out_dir) / f"likelihood_{dataset}.png", dataset)


def _loss_logs(paths: Sequence[Path], prefix: str) -> dict[str, pd.DataFrame]:
    """Every non-empty loss log of ``paths`` (denoiser and density runs included), keyed prefix + run."""
    logs = {}
    for path in sorted(paths):
        frame = pd.read_csv(path)
        if len(frame):
            logs[f"{prefix}{path.stem}"] = frame
    return logs
