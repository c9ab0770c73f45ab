"""Tests for affsr.cli: the pipeline end to end on tiny settings, and one-line user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from affsr.cli import main
from affsr.params import load_params, resolve

METRICS = {"lr_mse", "lr_rel", "lr_psnr", "psnr", "ssim", "swd", "spectrum_distance", "hf_ratio", "c2st",
           "c2st_se"}


def _write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _assert_user_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("affsr: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# ---- the pipeline -----------------------------------------------------------------------------------------


def test_pipeline_end_to_end(tmp_path, tiny_params, capsys):
    tiny_params["train"]["steps"] = 10
    params = _write_params(tmp_path / "params.yaml", tiny_params)
    data = tmp_path / "data" / "grass"
    runs, results = tmp_path / "runs" / "grass", tmp_path / "results"

    code, out, err = _cli(capsys, "prepare", "--params", params, "--dataset", "grass", "--out", data)
    assert code == 0, err
    assert sorted(p.name for p in data.iterdir()) == ["manifest.json", "test.npz", "train.npz", "val.npz"]
    assert "train 64" in out

    # mse from --params; affgan from the resolved JSON, as the workflow passes it.
    code, out, err = _cli(capsys, "train", "--params", params, "--dataset", "grass", "--method", "mse",
                          "--data", data, "--checkpoint", runs / "mse" / "model.pt",
                          "--log", results / "logs" / "mse.csv", "--quiet")
    assert code == 0, err
    assert "trained grass/mse: 10 steps" in out
    settings = json.dumps(resolve(load_params(params), "grass", "affgan"))
    code, out, err = _cli(capsys, "train", "--settings", settings, "--dataset", "grass", "--method", "affgan",
                          "--data", data, "--checkpoint", runs / "affgan" / "model.pt",
                          "--log", results / "logs" / "affgan.csv", "--quiet")
    assert code == 0, err
    for method in ("mse", "affgan"):
        assert (runs / method / "model.pt").is_file()
        assert not (runs / method / ".resume" / "state.pt").exists()  # removed once training finished
        assert pd.read_csv(results / "logs" / f"{method}.csv")["step"].iloc[-1] == 10

    evals = []
    for method in ("mse", "affgan", "bicubic", "pinv"):
        out_csv = results / "eval" / f"{method}.csv"
        extra = ["--checkpoint", runs / method / "model.pt"] if method in ("mse", "affgan") else []
        code, out, err = _cli(capsys, "evaluate", "--data", data, "--method", method, *extra,
                              "--out", out_csv, "--samples", results / "samples" / f"{method}.npz",
                              "--n-samples", 3)
        assert code == 0, err
        assert out_csv.is_file() and (results / "samples" / f"{method}.npz").is_file()
        evals.append(out_csv)

    metrics_csv, summary_md = results / "metrics.csv", results / "summary.md"
    code, out, err = _cli(capsys, "aggregate", *evals, "--out", metrics_csv, "--summary", summary_md)
    assert code == 0, err
    assert metrics_csv.is_file() and summary_md.read_text().startswith("# affsr results")

    metrics = pd.read_csv(metrics_csv)
    assert list(metrics.columns) == ["dataset", "method", "metric", "value"]
    assert set(metrics["metric"]) == METRICS
    assert set(metrics["dataset"]) == {"grass"}
    assert set(metrics["method"]) == {"mse", "affgan", "bicubic", "pinv"}
    assert len(metrics) == 4 * len(METRICS)
    value = metrics.set_index(["method", "metric"])["value"]
    assert value["affgan", "lr_mse"] < 1e-10  # projected: consistent by construction
    assert value["pinv", "lr_mse"] < 1e-10
    assert value["mse", "lr_rel"] >= 1e-3  # unprojected
    assert value["bicubic", "lr_rel"] >= 1e-3
    assert metrics["value"].notna().all()

    code, out, err = _cli(capsys, "summary", metrics_csv)
    assert code == 0, err
    for word in ("mse", "affgan", "bicubic", "pinv", "psnr", "ssim", "lr_mse", "lr_rel"):
        assert word in out


# ---- user mistakes: one line, no traceback, exit code 2 -----------------------------------------------------


def test_params_with_unknown_key(tmp_path, tiny_params, capsys):
    tiny_params["train"]["stpes"] = 3
    params = _write_params(tmp_path / "params.yaml", tiny_params)
    code, _, err = _cli(capsys, "prepare", "--params", params, "--dataset", "grass", "--out", tmp_path / "d")
    _assert_user_error(code, err, "params.train.stpes", "did you mean 'steps'")
    assert not (tmp_path / "d").exists()


def test_unknown_dataset_and_method(tmp_path, tiny_params, capsys):
    params = _write_params(tmp_path / "params.yaml", tiny_params)
    code, _, err = _cli(capsys, "prepare", "--params", params, "--dataset", "brick", "--out", tmp_path / "d")
    _assert_user_error(code, err, "'brick'", "grass")
    code, _, err = _cli(capsys, "train", "--params", params, "--dataset", "grass", "--method", "srgan",
                        "--data", tmp_path / "d", "--checkpoint", tmp_path / "m.pt", "--log", tmp_path / "l.csv")
    _assert_user_error(code, err, "'srgan'", "mse", "affgan")


def test_missing_data_folder(tmp_path, tiny_params, capsys):
    params = _write_params(tmp_path / "params.yaml", tiny_params)
    missing = tmp_path / "no_data"
    code, _, err = _cli(capsys, "train", "--params", params, "--dataset", "grass", "--method", "mse",
                        "--data", missing, "--checkpoint", tmp_path / "m.pt", "--log", tmp_path / "l.csv",
                        "--quiet")
    _assert_user_error(code, err, str(missing), "affsr prepare")
    assert not (tmp_path / "m.pt").exists()


def test_missing_checkpoint(tmp_path, tiny_data, capsys):
    missing = tmp_path / "nothing.pt"
    code, _, err = _cli(capsys, "evaluate", "--data", tiny_data, "--method", "mse", "--checkpoint", missing,
                        "--out", tmp_path / "m.csv")
    _assert_user_error(code, err, str(missing), "checkpoint not found")
    assert not (tmp_path / "m.csv").exists()


def test_settings_not_json(tmp_path, tiny_data, capsys):
    code, _, err = _cli(capsys, "train", "--settings", "{seed: 0", "--dataset", "grass", "--method", "mse",
                        "--data", tiny_data, "--checkpoint", tmp_path / "m.pt", "--log", tmp_path / "l.csv")
    _assert_user_error(code, err, "--settings is not valid JSON")


def test_missing_params_file(tmp_path, capsys):
    missing = tmp_path / "params.yaml"
    code, _, err = _cli(capsys, "prepare", "--params", missing, "--dataset", "grass", "--out", tmp_path / "d")
    _assert_user_error(code, err, str(missing), "not found")


def test_unreadable_metrics(tmp_path, capsys):
    missing = tmp_path / "metrics.csv"
    code, _, err = _cli(capsys, "summary", missing)
    _assert_user_error(code, err, str(missing))
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    code, _, err = _cli(capsys, "aggregate", bad, "--out", tmp_path / "out.csv")
    _assert_user_error(code, err, str(bad), "missing columns")
    assert not (tmp_path / "out.csv").exists()


# ---- the real entry point -------------------------------------------------------------------------------


def _python_m(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "affsr", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def test_python_m_affsr_help(tmp_path):
    done = _python_m("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: affsr")
    for verb in ("prepare", "train", "evaluate", "aggregate", "summary", "figures"):
        assert verb in done.stdout


def test_python_m_affsr_user_error_exit_code(tmp_path):
    done = _python_m("prepare", "--dataset", "grass", "--out", "d", cwd=tmp_path)  # no params.yaml here
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["affsr: error: params.yaml: params file not found"]


# ---- external sources: download and prepare ------------------------------------------------------------


def _celeba_params(tiny_params: dict, url: str, sha256: str) -> dict:
    tiny_params["datasets"]["faces"] = {
        "source": "celeba", "hr_size": 64, "crop": [60, 25, 128], "n_train": 100, "n_val": 100, "n_test": 100,
        "download": {"urls": [url], "sha256": sha256, "filename": "img_align_celeba.zip"}}
    return tiny_params


def test_download_then_prepare_celeba(tmp_path, tiny_params, capsys):
    """The paper-scale CelebA path on a 12-image stand-in: download (file:// URL), verify, crop, resize."""
    import hashlib

    from conftest import CELEBA_NUMBERS, make_celeba_zip

    archive = make_celeba_zip(tmp_path / "server" / "img_align_celeba.zip", CELEBA_NUMBERS)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    params = _write_params(tmp_path / "params.yaml", _celeba_params(tiny_params, archive.as_uri(), digest))
    dest = tmp_path / "data" / "downloads" / "faces" / "img_align_celeba.zip"
    code, out, err = _cli(capsys, "download", "--params", params, "--dataset", "faces", "--out", dest, "--quiet")
    assert code == 0, err
    assert dest.read_bytes() == archive.read_bytes() and digest in out

    data = tmp_path / "data" / "faces"
    code, out, err = _cli(capsys, "prepare", "--params", params, "--dataset", "faces", "--out", data,
                          "--input", dest, "--quiet")
    assert code == 0, err
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 6, "val": 3, "test": 3}  # the official partition by number
    assert manifest["channels"] == 3 and manifest["lr_size"] == 16
    with np.load(data / "test.npz") as z:
        assert [n.rsplit("/", 1)[-1] for n in z["names"]] == ["182638.jpg", "182639.jpg", "202599.jpg"]
        assert z["hr"].shape == (3, 3, 64, 64)


def test_download_checksum_mismatch_is_one_line_and_leaves_nothing(tmp_path, tiny_params, capsys):
    from conftest import make_celeba_zip

    archive = make_celeba_zip(tmp_path / "server" / "img_align_celeba.zip", [1, 162771, 182638])
    params = _write_params(tmp_path / "params.yaml", _celeba_params(tiny_params, archive.as_uri(), "0" * 64))
    dest = tmp_path / "dl" / "img_align_celeba.zip"
    code, _, err = _cli(capsys, "download", "--params", params, "--dataset", "faces", "--out", dest, "--quiet")
    _assert_user_error(code, err, "0" * 64, "sha256")
    assert not dest.exists() and not list(dest.parent.glob("*.part"))


def test_prepare_downloaded_source_without_input(tmp_path, tiny_params, capsys):
    params = _write_params(tmp_path / "params.yaml", _celeba_params(tiny_params, "https://example.org/x.zip", ""))
    code, _, err = _cli(capsys, "prepare", "--params", params, "--dataset", "faces", "--out", tmp_path / "d")
    _assert_user_error(code, err, "--input", "data/downloads/faces/img_align_celeba.zip")


def test_imagenet_path_missing_says_what_to_put_where(tmp_path, tiny_params, capsys):
    tiny_params["datasets"]["natural"] = {"source": "imagenet", "hr_size": 128, "path": str(tmp_path / "nope"),
                                          "n_train": 10, "n_val": 2, "n_test": 2}
    params = _write_params(tmp_path / "params.yaml", tiny_params)
    code, _, err = _cli(capsys, "prepare", "--params", params, "--dataset", "natural", "--out", tmp_path / "d")
    _assert_user_error(code, err, str(tmp_path / "nope"), "n01440764")
    assert not (tmp_path / "d").exists()


def test_imagenet_prepare_drops_small_files_and_resplits(tmp_path, tiny_params, capsys):
    """A miniature ILSVRC-2012 tree: files under min_bytes dropped, val/test exactly their counts."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "train"
    for c in range(3):
        wnid = f"n0000000{c}"
        (root / wnid).mkdir(parents=True)
        for k in range(6):
            size = (200, 150) if k else (40, 30)  # one small (low-resolution) file per class
            Image.fromarray(rng.integers(0, 256, size=(*size[::-1], 3), dtype=np.uint8)).save(
                root / wnid / f"{wnid}_{k}.JPEG", quality=95)
    tiny_params["datasets"]["natural"] = {"source": "imagenet", "hr_size": 32, "path": str(root),
                                          "min_bytes": 5000, "min_files": 18,
                                          "n_train": 100, "n_val": 3, "n_test": 4}
    params = _write_params(tmp_path / "params.yaml", tiny_params)
    code, _, err = _cli(capsys, "prepare", "--params", params, "--dataset", "natural", "--out", tmp_path / "d",
                        "--quiet")
    assert code == 0, err
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 8, "val": 3, "test": 4}  # 18 files − 3 small ones = 15
    names = set()
    for split in ("train", "val", "test"):
        with np.load(tmp_path / "d" / f"{split}.npz") as z:
            names |= set(z["names"].tolist())
    assert len(names) == 15 and not any(n.endswith("_0.JPEG") for n in names)
    tiny_params["datasets"]["natural"]["min_files"] = 50
    _write_params(params, tiny_params)
    code, _, err = _cli(capsys, "prepare", "--params", params, "--dataset", "natural", "--out", tmp_path / "e")
    _assert_user_error(code, err, "18", "50")
