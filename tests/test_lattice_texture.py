"""scripts/lattice_texture.py: the 4-px lattice peak ratio sees a 4-px periodic pattern and nothing else,
and the script reports it for a study's real images and runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "lattice_texture.py"
spec = importlib.util.spec_from_file_location("lattice_texture", SCRIPT)
lattice = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lattice)


def test_white_noise_has_no_lattice_and_a_4px_pattern_has_one():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(64, 3, 32, 32))
    dots = np.zeros((32, 32))
    dots[::4, ::4] = 1.0  # A⁺x-like: one bright pixel per 4 × 4 cell
    assert 0.8 < lattice.lattice_peak_ratio(noise) < 1.25
    assert lattice.lattice_peak_ratio(noise + dots) > 3
    # a period of 8 px is not a 4-px lattice: its power sits between the lattice frequencies' neighbourhoods
    wave = np.sin(2 * np.pi * np.arange(32) / 8)[None, :] * np.ones((32, 1))
    assert lattice.lattice_peak_ratio(noise + 2 * wave) < 1.25


def test_the_ratio_refuses_images_off_the_4px_grid():
    with pytest.raises(ValueError, match="multiples of 4"):
        lattice.lattice_peak_ratio(np.zeros((2, 1, 30, 32)))


def test_the_script_reports_the_real_images_and_every_run(tmp_path: Path):
    import yaml

    from affsr.config.study import RunSettings
    from affsr.params import load_params, resolve
    from affsr.training.run import train

    data = tmp_path / "data" / "grass"
    prepared = subprocess.run([str(Path(sys.executable).parent / "affsr"), "prepare", "--quiet", "--params",
                               str(REPO / "params.yaml"), "--dataset", "grass", "--out", str(data)],
                              capture_output=True, text=True)
    assert prepared.returncode == 0, prepared.stderr
    settings = resolve(load_params(yaml.safe_load((REPO / "params.yaml").read_text())), "grass", "mse")
    settings["train"].update(steps=2, batch_size=4, log_every=1)
    train(RunSettings.parse(settings), data, tmp_path / "runs" / "grass" / "mse" / "model.pt",
          tmp_path / "log.csv", progress=False)
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--dataset", "grass"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("grass val (") and "real HR" in lines[0]
    assert len(lines) == 2 and lines[1].split()[0] == "mse" and "ŷ" in lines[1] and " f " in lines[1]
