"""Tests for affsr.report.plots.metrics: metric bar charts (log axes with exact zeros) and the perception–distortion
plot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from png_checks import no_temp_files, read_png

from affsr.report.plots.metrics import _compact, metrics_plot, perception_distortion

def _metrics(zero: bool = True) -> pd.DataFrame:
    rows = []
    for ds in ("grass", "celeba"):
        for mi, method in enumerate(("bicubic", "A⁺x", "mse", "affgan")):
            rows += [
                (ds, method, "psnr", 22.0 + mi),
                (ds, method, "ssim", 0.6 + 0.05 * mi),
                (ds, method, "lr_mse", 0.0 if (zero and mi == 1) else 10.0 ** (-14 + mi * 3)),
                (ds, method, "lr_rel", 1e-14 if mi else 0.3),
            ]
    rows.append(("grass", "affgan", "fid", 42.0))  # extra metric goes after the known ones
    return pd.DataFrame(rows, columns=["dataset", "method", "metric", "value"])


def test_metrics_plot_writes_png_with_zero_log_values(tmp_path: Path) -> None:
    out = tmp_path / "m" / "metrics.png"
    metrics_plot(_metrics(zero=True), out)
    img = read_png(out)
    assert img.std() > 0.01
    no_temp_files(out.parent)


def test_metrics_plot_single_metric_and_missing_combinations(tmp_path: Path) -> None:
    df = _metrics()
    df = df[(df.metric == "lr_mse")].iloc[:-1]  # one dataset/method pair missing
    out = tmp_path / "one.png"
    metrics_plot(df, out)
    read_png(out)


def test_metrics_plot_all_zero_log_metric(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {"dataset": ["d", "d"], "method": ["a", "b"], "metric": ["lr_rel", "lr_rel"], "value": [0.0, 0.0]}
    )
    metrics_plot(df, tmp_path / "z.png")
    read_png(tmp_path / "z.png")


def test_metrics_plot_rejects_empty_or_malformed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        metrics_plot(pd.DataFrame(columns=["dataset", "method", "metric", "value"]), tmp_path / "a.png")
    with pytest.raises(ValueError, match="missing column"):
        metrics_plot(pd.DataFrame({"method": ["a"], "value": [1.0]}), tmp_path / "b.png")
    assert list(tmp_path.iterdir()) == []


def test_compact_format() -> None:
    assert _compact(0.0) == "0"
    assert _compact(1.234e-14) == "1.2e-14"
    assert _compact(25.345) == "25.3"
    assert _compact(0.8123) == "0.812"
    assert _compact(float("nan")) == "n/a"


def test_perception_distortion_writes_png(tmp_path: Path) -> None:
    df = pd.concat([_metrics(), pd.DataFrame(
        [("grass", m, "cross_entropy", 3.0 + 0.1 * i) for i, m in enumerate(("bicubic", "mse", "affgan", "hr"))],
        columns=["dataset", "method", "metric", "value"])])
    perception_distortion(df, tmp_path / "pd.png", "grass")
    read_png(tmp_path / "pd.png")
    with pytest.raises(ValueError, match="celeba needs both psnr and cross_entropy"):
        perception_distortion(df, tmp_path / "none.png", "celeba")
    assert not (tmp_path / "none.png").exists()
