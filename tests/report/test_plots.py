"""The figures draw off-screen: importing affsr.report.plots selects matplotlib's Agg backend, even where
a display is set (a cluster node with X forwarding, a desktop)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_importing_the_plots_selects_agg() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"DISPLAY": ":0"}
    out = subprocess.run([sys.executable, "-c", "import affsr.report.plots, matplotlib; print(matplotlib.get_backend())"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().lower() == "agg"
