"""The benchmark scripts keep working (they time nothing here: 2 steps, only the output is checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_train_step_benchmark_runs_every_kind_of_method(tmp_path, tiny_params):
    tiny_params["methods"]["dae"] = {"objective": "dae", "options": {"snapshots": 2}}
    tiny_params["methods"]["affdg"] = {"objective": "denoiser_guided", "guide": "dae"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "train_step.py"), "--params", str(tmp_path / "params.yaml"),
         "--steps", "2", "--warmup", "1", "--threads", "1", "--json", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| affgan | gan × projected |" in result.stdout and "projection share" in result.stdout
    out = json.loads((tmp_path / "out.json").read_text())
    assert {r["method"] for r in out["rows"]} == {"mse", "affgan", "dae", "affdg"}
    assert all(r["pipeline_img_s"] > 0 and r["reference_img_s"] > 0 for r in out["rows"])
    assert out["torch"] and out["device"].startswith("CPU")


def test_train_step_benchmark_times_the_train_options(tmp_path, tiny_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "train_step.py"), "--params", str(tmp_path / "params.yaml"),
         "--options", "--only", "fp32 eager", "bf16", "channels_last", "--methods", "mse", "--batch", "4",
         "--steps", "2", "--warmup", "1", "--threads", "1", "--json", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| mse | bf16 | 4 |" in result.stdout and "× fp32 eager" in result.stdout
    rows = json.loads((tmp_path / "out.json").read_text())["options"]
    assert [r["options"] for r in rows] == ["fp32 eager", "bf16", "channels_last"]
    assert all(r["img_s"] > 0 and r["batch"] == 4 for r in rows) and rows[0]["speedup"] == 1.0


def test_paper_cost_benchmark_times_each_cost_class_once_and_prices_every_run(tmp_path, tiny_params):
    tiny_params["methods"]["affmse"] = {"objective": "pixel", "constraint": "projected"}
    tiny_params["methods"]["dae"] = {"objective": "dae", "options": {"snapshots": 2}}
    tiny_params["methods"]["affdg"] = {"objective": "denoiser_guided", "guide": "dae"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "paper_cost.py"), "--params", str(tmp_path / "params.yaml"),
         "--study", "demo", "--batch", "2", "--steps", "1", "--warmup", "1",
         "--markdown", str(tmp_path / "cost.md"), "--json", str(tmp_path / "cost.json")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads((tmp_path / "cost.json").read_text())
    rows = {r["method"]: r for r in out["rows"]}
    assert set(rows) == set(tiny_params["methods"])
    assert rows["mse"]["timed_as"] == rows["affmse"]["timed_as"] == "affmse"  # one pixel class, projected timed
    assert rows["mse"]["seconds_per_step"] == rows["affmse"]["seconds_per_step"] > 0
    configured = tiny_params["train"]["steps"]
    assert rows["affgan"]["cpu_hours"] == rows["affgan"]["seconds_per_step"] * configured / 3600
    assert out["machine"]["load_average"] and out["machine"]["threads"] == 1
    text = (tmp_path / "cost.md").read_text()
    assert "| grass | affdg | affdg |" in text and "| all | 5 |" in text and "load average" in text


def test_upscale_photo_benchmark_measures_time_memory_and_the_round_trip(tmp_path, affmse_checkpoint):
    checkpoint = affmse_checkpoint
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "upscale_photo.py"), "--checkpoint", str(checkpoint),
         "--sizes", "24", "--photos", "coffee", "--json", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads((tmp_path / "out.json").read_text())["rows"][0]
    assert row["hr"] == 96 and row["levels_off"] == 0 and row["seconds"] > 0 and 0.05 < row["peak_gb"] < 4
    assert row["projection"].startswith("projection converged")
    assert "| coffee | 24² → 96² | 8 |" in result.stdout


def test_round_trip_script_goes_through_the_files(tmp_path, affmse_checkpoint):
    checkpoint = affmse_checkpoint
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "round_trip.py"), "--checkpoint", str(checkpoint),
         "--photos", "microaneurysms", "page", "--bits", "8", "16", "--drawn-bits", "--out", str(tmp_path / "table.md")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in (tmp_path / "table.md").read_text().splitlines() if line.startswith("| microaneurysms")
            or line.startswith("| page")]
    assert len(rows) == 4 and all(row.split("|")[4].strip() == "0" for row in rows), rows
