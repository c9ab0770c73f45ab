"""Tests for affsr.report.tables: the summary (text and Markdown), the Markdown writer, the DVC metrics tree and
reading the per-run metric CSVs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from affsr.errors import DataError
from affsr.report.tables import METRIC_ORDER, markdown_table, metrics_tree, read_metrics, summary_markdown, summary_table

# Values chosen so that each format shows (psnr 2 decimals, ssim 3, lr_mse scientific, …).
VALUES = {"c2st": 0.51234, "lr_mse": 1.5e-15, "psnr": 12.3456, "spread": 0.1234, "ssim": 0.98765,
          "lr_psnr": 123.456, "swd": 45.67}
FORMATTED = {"psnr": "12.35", "ssim": "0.988", "lr_mse": "1.50e-15", "lr_psnr": "123.5", "swd": "45.7",
             "c2st": "0.512", "spread": "1.23e-01"}
DATASETS = ("grass", "faces")
METHODS = ("zeta", "alpha")  # not alphabetical: the tables keep the order first seen


def _metrics(drop: tuple[str, str, str] | None = None) -> pd.DataFrame:
    """Tidy rows for every dataset × method × VALUES metric (metrics given out of METRIC_ORDER)."""
    rows = [{"dataset": d, "method": m, "metric": k, "value": v}
            for d in DATASETS for m in METHODS for k, v in VALUES.items() if (d, m, k) != drop]
    return pd.DataFrame(rows)


def _columns_in_order() -> list[str]:
    """METRIC_ORDER first, then the metrics it does not know (spread)."""
    return [m for m in METRIC_ORDER if m in VALUES] + [m for m in VALUES if m not in METRIC_ORDER]


def test_the_expected_column_order_is_not_the_input_order():
    # guards the tests below: the metrics are given in an order the tables must change
    assert _columns_in_order() == ["lr_mse", "lr_psnr", "psnr", "ssim", "swd", "c2st", "spread"]
    assert list(VALUES) != _columns_in_order()


def test_summary_table_has_every_dataset_method_row_formatted_per_metric():
    lines = summary_table(_metrics()).splitlines()
    header = lines[0].split()
    assert header == ["metric", *_columns_in_order()]
    body = [line.split() for line in lines[2:]]
    assert len(body) == len(DATASETS) * len(METHODS)
    expected_cells = [FORMATTED[m] for m in _columns_in_order()]
    for cells in body:
        assert cells[-len(expected_cells):] == expected_cells
    # rows in the order first seen: grass zeta, grass alpha, faces zeta, faces alpha
    text = "\n".join(lines[2:])
    assert text.index("grass") < text.index("faces")
    assert body[0][:2] == ["grass", "zeta"] and body[1] == ["alpha", *expected_cells]
    assert body[2][:2] == ["faces", "zeta"]


def test_summary_markdown_rows_are_exact_and_a_missing_value_is_a_dash():
    text = summary_markdown(_metrics(drop=("faces", "alpha", "swd")))
    assert text.startswith("# affsr results\n\n")
    lines = text.splitlines()
    header = "| dataset | method | " + " | ".join(_columns_in_order()) + " |"
    start = lines.index(header)
    assert lines[start + 1] == "|" + "---|" * (2 + len(VALUES))
    cells = [FORMATTED[m] for m in _columns_in_order()]
    missing = [("–" if m == "swd" else FORMATTED[m]) for m in _columns_in_order()]
    assert lines[start + 2:start + 6] == [
        "| grass | zeta | " + " | ".join(cells) + " |",
        "| grass | alpha | " + " | ".join(cells) + " |",
        "| faces | zeta | " + " | ".join(cells) + " |",
        "| faces | alpha | " + " | ".join(missing) + " |",
    ]
    assert "real-data floor" in text and "lower is better" in text  # the legend follows the table


def test_markdown_table_exact_output():
    frame = pd.DataFrame({"method": ["pinv", "mse"], "psnr": [12.5, 20]})
    assert markdown_table(frame) == ("| method | psnr |\n"
                                     "|---|---|\n"
                                     "| pinv | 12.5 |\n"
                                     "| mse | 20.0 |")
    # no index column even for a non-default index
    assert markdown_table(frame.set_axis(["a", "b"])) == markdown_table(frame)


def test_metrics_tree_nests_dataset_method_metric_with_log10_consistency():
    frame = pd.DataFrame([
        {"dataset": "grass", "method": "pinv", "metric": "lr_mse", "value": 1e-30},
        {"dataset": "grass", "method": "pinv", "metric": "lr_rel", "value": 0.01},
        {"dataset": "grass", "method": "pinv", "metric": "psnr", "value": 11.5},
        {"dataset": "grass", "method": "mse", "metric": "lr_mse", "value": 0.0},
        {"dataset": "faces", "method": "pinv", "metric": "psnr", "value": 20},
    ])
    tree = metrics_tree(frame)
    assert set(tree) == {"grass", "faces"}
    assert set(tree["grass"]) == {"pinv", "mse"} and set(tree["faces"]) == {"pinv"}
    pinv = tree["grass"]["pinv"]
    assert set(pinv) == {"lr_mse", "log10_lr_mse", "lr_rel", "log10_lr_rel", "psnr"}
    assert pinv["lr_mse"] == 1e-30 and pinv["log10_lr_mse"] == pytest.approx(-30.0)
    assert pinv["log10_lr_rel"] == pytest.approx(-2.0)
    assert tree["grass"]["mse"]["log10_lr_mse"] == pytest.approx(-300.0)  # 0 is clamped, not -inf
    assert tree["faces"]["pinv"] == {"psnr": 20.0}
    assert all(type(v) is float for entry in (pinv, tree["faces"]["pinv"]) for v in entry.values())


# ---- read_metrics -------------------------------------------------------------------------------------------


def _write(path, frame: pd.DataFrame):
    frame.to_csv(path, index=False)
    return path


def test_read_metrics_concatenates_in_the_order_given(tmp_path):
    a = _write(tmp_path / "a.csv", _metrics().iloc[:3])
    b = _write(tmp_path / "b.csv", _metrics().iloc[3:5])
    frame = read_metrics([b, a])
    assert list(frame.columns) == ["dataset", "method", "metric", "value"]
    assert list(frame.index) == list(range(5))
    expected = pd.concat([_metrics().iloc[3:5], _metrics().iloc[:3]], ignore_index=True)
    pd.testing.assert_frame_equal(frame, expected)


def test_read_metrics_refuses_a_missing_file_naming_it(tmp_path):
    good = _write(tmp_path / "a.csv", _metrics())
    missing = tmp_path / "runs" / "nothing.csv"
    with pytest.raises(DataError, match=f"^{missing}: cannot read metrics"):
        read_metrics([good, missing])


def test_read_metrics_refuses_an_empty_file_naming_it(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=f"^{empty}: cannot read metrics"):
        read_metrics([empty])


def test_read_metrics_refuses_a_file_missing_columns_naming_them(tmp_path):
    bad = _write(tmp_path / "bad.csv", _metrics().drop(columns=["metric", "dataset"]))
    with pytest.raises(DataError) as info:
        read_metrics([_write(tmp_path / "good.csv", _metrics()), bad])
    assert str(info.value) == f"{bad}: missing columns ['dataset', 'metric']"


def test_read_metrics_of_no_files_is_an_error():
    with pytest.raises(DataError, match="no metric files given"):
        read_metrics([])


def test_read_metrics_keeps_values_as_numbers(tmp_path):
    frame = read_metrics([_write(tmp_path / "a.csv", _metrics())])
    assert frame["value"].dtype.kind == "f"
    assert math.isclose(frame.loc[frame.metric == "lr_mse", "value"].iloc[0], 1.5e-15)


def test_read_metrics_of_a_file_that_is_not_text(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"dataset,method,metric,value\ngrass,\xff\xfe,psnr,1\n")
    with pytest.raises(DataError, match="m.csv: cannot read metrics"):
        read_metrics([path])
