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
