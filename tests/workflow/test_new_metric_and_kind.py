"""A new metric and a new operator kind are each one function plus one row: tried as a new user would,
in a copy of the package where nothing else is edited.

* The metric (mean brightness of the outputs against the real images') is one function and one row of
  ``affsr/evaluation/metrics.py``: ``affsr evaluate`` computes it, ``affsr aggregate`` puts it in the
  summary table, and the README's per-domain tables show it.
* The kind (a 3 × 3 "cross" blur) is one kernel function in ``affsr/operators/kernels.py`` and one row of
  ``KINDS``: params.yaml accepts it, ``affsr prepare`` makes data with it, ``affsr downsample --operator``
  uses it, and a data set made with it is rebuilt from its manifest.

Every command runs in a subprocess with the copy first on PYTHONPATH; the repository is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]

METRIC_FUNCTION = '''

def _brightness_gap(s: Scored, done: dict) -> float:
    """|mean of the outputs − mean of the real images| (a scratch metric of the extensibility test)."""
    return abs(float(s.compared.double().mean()) - float(s.real.double().mean()))


'''
METRIC_ROW = ('    Metric("brightness_gap", _brightness_gap, "sets", False, "brightness gap ↓", table_format="{:.4f}",\n'
              '           readme_format="{:.3f}"),\n')
KIND_FUNCTION = '''

def cross(scale: int) -> Kernel:
    """A 3 × 3 cross (the centre and its four neighbours), normalised (a scratch kind of the extensibility test)."""
    k = torch.zeros(3, 3, dtype=torch.float64)
    k[1, :] = 1.0
    k[:, 1] = 1.0
    return k / k.sum(), (1, 1)
'''
KIND_ROW = '    "cross": OperatorKind(lambda s: {}, lambda d: kernels.cross(d["scale"])),\n'


def _insert_before(path: Path, marker: str, text: str) -> None:
    source = path.read_text()
    assert source.count(marker) == 1, f"{marker!r} not found once in {path}"
    path.write_text(source.replace(marker, text + marker))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """(root, env): a copy of affsr with one new metric and one new operator kind, each a function + a row."""
    root = tmp_path_factory.mktemp("scratch")
    package = root / "pkg" / "affsr"
    shutil.copytree(REPO / "affsr", package, ignore=shutil.ignore_patterns("__pycache__"))
    metrics = package / "evaluation" / "metrics.py"
    _insert_before(metrics, "#: Every metric, in the order", METRIC_FUNCTION.lstrip("\n"))
    _insert_before(metrics, ")\n\nMETRIC_ORDER", METRIC_ROW)
    (package / "operators" / "kernels.py").write_text((package / "operators" / "kernels.py").read_text() + KIND_FUNCTION)
    _insert_before(package / "operators" / "kinds.py", '    "file": OperatorKind(', KIND_ROW)
    env = {**os.environ, "PYTHONPATH": str(root / "pkg")}
    return root, env


def _affsr(root: Path, env: dict, *argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "affsr", *map(str, argv)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def _python(root: Path, env: dict, code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          check=True).stdout


def test_the_new_metric_reaches_evaluation_the_tables_and_the_readme(scratch, tiny_data):
    root, env = scratch
    for method in ("bicubic", "hr"):
        run = _affsr(root, env, "evaluate", "--data", tiny_data, "--method", method, "--out",
                     root / f"eval/{method}.csv", "--c2st-steps", "2")
        assert run.returncode == 0, run.stderr
    rows = pd.read_csv(root / "eval/bicubic.csv")
    assert list(rows["metric"])[-2:] == ["c2st_se", "brightness_gap"]  # its place in the table: last row
    assert pd.read_csv(root / "eval/hr.csv")["metric"].tolist()[-1] == "brightness_gap"  # a set metric: the floor too
    run = _affsr(root, env, "aggregate", root / "eval/bicubic.csv", root / "eval/hr.csv", "--out",
                 root / "metrics.csv", "--summary", root / "summary.md")
    assert run.returncode == 0, run.stderr
    header = next(line for line in (root / "summary.md").read_text().splitlines() if line.startswith("| dataset"))
    assert header.rstrip(" |").endswith("brightness_gap")
    value = float(rows.set_index("metric")["value"]["brightness_gap"])
    assert f"{value:.4f}" in (root / "summary.md").read_text()
    block = _python(root, env, "import pandas as pd\nfrom affsr.report.readme_blocks import domain_table\n"
                               f"print(domain_table(pd.read_csv({str(root / 'metrics.csv')!r}), 'grass'))")
    assert block.splitlines()[0].rstrip(" |").endswith("brightness_gap") and f"{value:.3f}" in block


def test_the_new_kind_reaches_params_prepare_and_downsample(scratch, tmp_path):
    root, env = scratch
    from conftest import tiny_params_dict

    params = tiny_params_dict()
    params["operator"] = {"kind": "cross", "scale": 4}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = _affsr(root, env, "prepare", "--params", root / "params.yaml", "--dataset", "grass", "--out", root / "data")
    assert run.returncode == 0, run.stderr
    manifest = json.loads((root / "data/manifest.json").read_text())
    assert manifest["operator"] == {"name": "cross", "scale": 4, "kernel_size": 3, "origin": 1}
    rebuilt = _python(root, env, "import json\nfrom affsr.operators import operator_from_description\n"
                                 f"op = operator_from_description(json.load(open({str(root / 'data/manifest.json')!r}))['operator'])\n"
                                 "print(op.kernel.tolist())")
    assert json.loads(rebuilt) == [[0, 0.2, 0], [0.2, 0.2, 0.2], [0, 0.2, 0]]
    image = (np.arange(32 * 32).reshape(32, 32) % 251).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "hr.png")
    run = _affsr(root, env, "downsample", tmp_path / "hr.png", tmp_path / "lr.npy", "--operator", "cross",
                 "--params", root / "params.yaml")
    assert run.returncode == 0, run.stderr
    lr = np.load(tmp_path / "lr.npy")[0]
    y = image.astype(np.float64) / 255
    centre = y[4, 4] + y[3, 4] + y[5, 4] + y[4, 3] + y[4, 5]
    assert lr.shape == (8, 8) and lr[1, 1] == pytest.approx(centre / 5, abs=1e-6)


def test_an_unknown_kind_names_the_kinds(scratch, tmp_path):
    root, env = scratch
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "hr.png")
    run = _affsr(root, env, "downsample", tmp_path / "hr.png", tmp_path / "lr.npy", "--operator", "crosss")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "affsr: error: --operator.kind: 'crosss' is not one of: gaussian, box, area, bicubic, motion, cross, file "
        "(did you mean 'cross'?)"]
