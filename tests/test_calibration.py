"""scripts/calibrate_soft_weights.py: the bisection finds the weight whose ℓ_MSE meets the paper's,
trying only 3-significant-digit weights (what params.yaml holds), and records every trial."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "calibrate_soft_weights.py"
spec = importlib.util.spec_from_file_location("calibrate_soft_weights", SCRIPT)
calibrate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(calibrate)


def test_bisection_meets_a_falling_measure_within_the_tolerance():
    log: list[dict] = []
    w = calibrate.bisect(lambda w: 0.01 / w, 0.0023, 1e-4, 1e5, steps=20, tolerance=1.25, log=log,
                         label={"method": "x"})
    assert 0.01 / w == pytest.approx(0.0023, rel=0.25)
    assert w == float(f"{w:.3g}") and all(t["weight"] == float(f"{t['weight']:.3g}") for t in log)
    assert [t["step"] for t in log] == list(range(len(log))) and log[-1]["weight"] == w


def test_bisection_keeps_the_closest_trial_when_the_budget_runs_out():
    log: list[dict] = []
    w = calibrate.bisect(lambda w: 1.0 / w, 0.5, 1e-3, 1e3, steps=2, tolerance=1.01, log=log, label={})
    closest = min(log, key=lambda t: abs(math.log(t["ratio"])))  # nearest the target on a log scale
    assert len(log) == 2 and w == closest["weight"]

