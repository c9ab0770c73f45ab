"""`affsr upscale` and `affsr downsample` on images no model was trained on: sizes, tiling, channel
conversion, and the consistency A ŷ = x of every result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from affsr.cli import main
from affsr.operators import Downsampling


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_data) -> Path:
    """A projected (affmse) grey model trained for a few steps on the tiny grass data."""
    from conftest import tiny_params_dict

    root = tmp_path_factory.mktemp("upscale")
    params = tiny_params_dict()
    params["train"]["steps"] = 3
    params["methods"]["affmse"] = {"objective": "pixel", "constraint": "projected", "options": {"loss": "l2"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    code = main(["train", "--quiet", "--params", str(root / "params.yaml"), "--dataset", "grass", "--method",
                 "affmse", "--data", str(tiny_data), "--checkpoint", str(root / "model.pt"),
                 "--log", str(root / "losses.csv")])
    assert code == 0
    return root / "model.pt"


def _camera_lr(tmp_path: Path, h: int, w: int) -> tuple[Path, np.ndarray]:
    """An LR input cut from skimage's camera (a photo the grass model never saw), saved as PNG."""
    import skimage.data

    pixels = skimage.data.camera()[100:100 + h, 200:200 + w]
    path = tmp_path / "lr.png"
    Image.fromarray(pixels).save(path)
    return path, pixels.astype(np.float64) / 255.0


@pytest.mark.parametrize("tile,overlap", [(64, 8), (12, 4), (7, 2)])
def test_upscale_is_consistent_for_any_tiling(tmp_path, checkpoint, capsys, tile, overlap):
    path, x = _camera_lr(tmp_path, 30, 41)  # not square, not a multiple of the tile
    code = main(["upscale", str(path), str(tmp_path / "sr.png"), "--checkpoint", str(checkpoint),
                 "--tile", str(tile), "--overlap", str(overlap), "--raw", str(tmp_path / "sr.npy")])
    out = capsys.readouterr().out
    assert code == 0
    sr = np.load(tmp_path / "sr.npy")
    assert sr.shape == (1, 120, 164) and np.isfinite(sr).all()
    with Image.open(tmp_path / "sr.png") as png:
        assert png.size == (164, 120) and png.mode == "L"
    op = Downsampling.gaussian(1.0, 9, 4)
    lr_again = op(torch.from_numpy(sr.astype(np.float64))[None])[0, 0].numpy()
    assert np.abs(lr_again - x).max() < 1e-5  # float32 output of an exactly consistent float64 result
    assert "consistency" in out


def test_tiles_agree_with_a_single_pass_where_they_do_not_overlap_edges(tmp_path, checkpoint):
    """Tiling only changes the generator's view near tile borders; far from them, outputs agree."""
    path, _ = _camera_lr(tmp_path, 32, 32)
    results = {}
    for tile in (64, 16):
        assert main(["upscale", str(path), str(tmp_path / f"{tile}.png"), "--checkpoint", str(checkpoint),
                     "--tile", str(tile), "--overlap", "4", "--raw", str(tmp_path / f"{tile}.npy")]) == 0
        results[tile] = np.load(tmp_path / f"{tile}.npy")
    assert np.corrcoef(results[64].ravel(), results[16].ravel())[0, 1] > 0.95


def test_colour_input_to_a_grey_model_is_converted_and_said(tmp_path, checkpoint, capsys):
    import skimage.data

    path = tmp_path / "rgb.png"
    Image.fromarray(skimage.data.astronaut()[:24, :20]).save(path)
    assert main(["upscale", str(path), str(tmp_path / "sr.png"), "--checkpoint", str(checkpoint)]) == 0
    assert "converted colour to grey" in capsys.readouterr().out


def test_downsample_crops_to_a_multiple_of_the_scale_and_says_so(tmp_path, checkpoint, capsys):
    import skimage.data

    path = tmp_path / "hr.png"
    Image.fromarray(skimage.data.camera()[:50, :45]).save(path)
    assert main(["downsample", str(path), str(tmp_path / "lr.png"), "--checkpoint", str(checkpoint),
                 "--raw", str(tmp_path / "lr.npy")]) == 0
    out = capsys.readouterr().out
    assert "cropped 50×45 to 48×44" in out
    x = np.load(tmp_path / "lr.npy")
    assert x.shape == (1, 12, 11)
    hr = skimage.data.camera()[:48, :44].astype(np.float64) / 255.0
    want = Downsampling.gaussian(1.0, 9, 4)(torch.from_numpy(hr)[None, None])[0].numpy()
    assert np.abs(x - want).max() < 1e-6


def test_upscale_of_a_missing_file_is_one_line(tmp_path, checkpoint, capsys):
    code = main(["upscale", str(tmp_path / "nope.png"), str(tmp_path / "sr.png"), "--checkpoint", str(checkpoint)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("affsr: error:") and "nope.png" in err and "Traceback" not in err
