"""`affsr upscale` and `affsr downsample` on images no model was trained on: sizes, tiling, channel
conversion, and the consistency A ŷ = x of every result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from affsr.cli import main
from affsr.operators.downsampling import Downsampling


@pytest.fixture(scope="module")
def checkpoint(affmse_checkpoint) -> Path:
    """A projected (affmse) grey model trained for a few steps on the tiny grass data."""
    return affmse_checkpoint


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
                 "--tile", str(tile), "--overlap", str(overlap), "--raw", str(tmp_path / "sr.npy"), "--no-box"])
    out = capsys.readouterr().out
    assert code == 0
    sr = np.load(tmp_path / "sr.npy")
    assert sr.shape == (1, 120, 164) and np.isfinite(sr).all()
    with Image.open(tmp_path / "sr.png") as png:
        assert png.size == (164, 120) and png.mode == "L"
    op = Downsampling.gaussian(1.0, 9, 4)
    lr_again = op(torch.from_numpy(sr.astype(np.float64))[None])[0, 0].numpy()
    assert np.abs(lr_again - x).max() < 1e-5  # float32 output of an exactly consistent float64 result
    assert "max |Aŷ − x|" in out and "after 8-bit quantisation" in out


def test_tiles_agree_with_a_single_pass_where_they_do_not_overlap_edges(tmp_path, checkpoint):
    """Tiling only changes the generator's view near tile borders; far from them, outputs agree."""
    path, _ = _camera_lr(tmp_path, 32, 32)
    results = {}
    for tile in (64, 16):
        assert main(["upscale", str(path), str(tmp_path / f"{tile}.png"), "--checkpoint", str(checkpoint),
                     "--tile", str(tile), "--overlap", "4", "--raw", str(tmp_path / f"{tile}.npy"), "--no-box"]) == 0
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


def _downsampled_lr(tmp_path: Path, checkpoint: Path, mode: str = "L") -> Path:
    """An 8-bit LR made by `affsr downsample` from a camera crop, so that a consistent image in [0, 1] exists."""
    import skimage.data

    hr = skimage.data.camera()[80:208, 120:248]
    if mode == "LA":  # with an alpha plane: a left-to-right ramp
        hr = np.stack([hr, np.tile(np.linspace(0, 255, hr.shape[1]).astype(np.uint8), (hr.shape[0], 1))], -1)
    Image.fromarray(hr, mode=mode).save(tmp_path / "hr.png")
    assert main(["downsample", str(tmp_path / "hr.png"), str(tmp_path / "lr.png"), "--checkpoint",
                 str(checkpoint)]) == 0
    return tmp_path / "lr.png"


def _grey_levels(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".png":
        with Image.open(path) as img:
            a = np.asarray(img, dtype=np.float64)
            top = 65535.0 if img.mode.startswith("I") else 255.0
    else:
        import tifffile

        a = tifffile.imread(path).astype(np.float64)
        top = 65535.0
    return (a / top)[None] if a.ndim == 2 else np.moveaxis(a / top, -1, 0)


@pytest.mark.parametrize("name,extra,levels", [("sr.png", [], 255), ("sr16.png", ["--bits", "16"], 65535),
                                               ("sr.tif", [], 65535), ("sr.tiff", [], 65535), ("sr.npy", [], None)])
def test_each_format_holds_the_box_projected_consistent_image(tmp_path, checkpoint, capsys, name, extra, levels):
    lr_path = _downsampled_lr(tmp_path, checkpoint)
    capsys.readouterr()
    assert main(["upscale", str(lr_path), str(tmp_path / name), "--checkpoint", str(checkpoint),
                 "--raw", str(tmp_path / "raw.npy"), *extra]) == 0
    out = capsys.readouterr().out
    assert "projection converged" in out and "quantisation" in out and "clipped without" in out
    assert "grey levels (of 255) for a 8-bit round trip" in out
    assert "round trip at 8 bits off by 0 levels" in out
    raw, written = np.load(tmp_path / "raw.npy"), _grey_levels(tmp_path / name)
    assert written.shape == raw.shape == (1, 128, 128)
    assert raw.min() >= 0 and raw.max() <= 1
    step = 1e-6 if levels is None else 0.5 / levels + 1e-7  # float32 raw, or half a quantisation step
    assert np.abs(written - raw).max() <= step
    with Image.open(lr_path) as img:
        x = np.asarray(img, dtype=np.float64)[None, None] / 255.0
    op = Downsampling.gaussian(1.0, 9, 4)
    again = op(torch.from_numpy(written.astype(np.float64))[None])[0].numpy()
    assert 255 * np.abs(again - x[0]).max() < 0.5  # the saved file downsamples back to the input exactly
    assert np.array_equal(np.rint(255 * again), np.rint(255 * x[0]))


def test_unknown_extension_is_refused_in_one_line(tmp_path, checkpoint, capsys):
    path, _ = _camera_lr(tmp_path, 16, 16)
    for verb in ("upscale", "downsample"):
        code = main([verb, str(path), str(tmp_path / "out.jpg"), "--checkpoint", str(checkpoint)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and err.startswith("affsr: error:")
        assert "out.jpg" in err and ".png" in err and ".tif" in err and ".npy" in err
        assert not (tmp_path / "out.jpg").exists()


def test_downsample_writes_16_bit_and_npy(tmp_path, checkpoint):
    lr8 = _downsampled_lr(tmp_path, checkpoint)
    for name, extra in (("lr16.png", ["--bits", "16"]), ("lr.npy", [])):
        assert main(["downsample", str(tmp_path / "hr.png"), str(tmp_path / name), "--checkpoint",
                     str(checkpoint), *extra]) == 0
    exact, png16, png8 = np.load(tmp_path / "lr.npy"), _grey_levels(tmp_path / "lr16.png"), _grey_levels(lr8)
    assert exact.dtype == np.float32 and exact.shape == png16.shape == png8.shape == (1, 32, 32)
    assert np.abs(png16 - exact).max() <= 0.5 / 65535 + 1e-7 and np.abs(png8 - exact).max() <= 0.5 / 255 + 1e-7


def test_alpha_is_kept_or_dropped_and_said(tmp_path, checkpoint, capsys):
    import skimage.data

    rgba = np.dstack([skimage.data.camera()[:32, :32]] * 3 + [np.full((32, 32), 200, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "lr.png")
    assert main(["upscale", str(tmp_path / "lr.png"), str(tmp_path / "keep.png"), "--checkpoint",
                 str(checkpoint)]) == 0
    assert "alpha channel upscaled" in capsys.readouterr().out
    with Image.open(tmp_path / "keep.png") as img:
        assert img.mode == "LA" and np.all(np.asarray(img)[..., 1] == 200)
    for out, extra in (("drop.png", ["--alpha", "drop"]), ("x.npy", [])):
        assert main(["upscale", str(tmp_path / "lr.png"), str(tmp_path / out), "--checkpoint",
                     str(checkpoint), *extra]) == 0
        assert "note: alpha channel dropped" in capsys.readouterr().out
    with Image.open(tmp_path / "drop.png") as img:
        assert img.mode == "L"
    assert main(["downsample", str(tmp_path / "lr.png"), str(tmp_path / "small.png"), "--checkpoint",
                 str(checkpoint)]) == 0
    assert "note: alpha channel dropped" in capsys.readouterr().out


def test_an_image_made_by_another_tool_with_its_operator(tmp_path, checkpoint):
    """LR made by PIL's bicubic reduction: upscaled with `--operator bicubic`, PIL reducing the output gives
    the LR image back (interior pixels: PIL clamps at the border, A wraps) to a grey level; with the
    model's own Gaussian A it does not."""
    import skimage.data

    hr = skimage.data.camera()[:128, 200:328]
    reduce = lambda a: np.asarray(Image.fromarray(a).resize((32, 32), Image.BICUBIC)).astype(int)  # noqa: E731
    lr = reduce(hr)
    Image.fromarray(lr.astype(np.uint8)).save(tmp_path / "lr.png")
    errors, edges = {}, {}
    for name, extra in (("own", []), ("circular", ["--operator", "bicubic", "--boundary", "circular"]),
                        ("reflect", ["--operator", "bicubic"])):
        out = tmp_path / f"{name}.png"
        assert main(["upscale", str(tmp_path / "lr.png"), str(out), "--checkpoint", str(checkpoint), *extra]) == 0
        delta = np.abs(reduce(np.asarray(Image.open(out))) - lr)
        errors[name], edges[name] = delta[2:-2, 2:-2].max(), delta.max()
    assert errors["circular"] <= 1 and errors["reflect"] <= 1 < errors["own"]
    assert edges["reflect"] < edges["circular"]  # the default reflecting edges are closer to PIL's


def _altered_checkpoint(tmp_path: Path, checkpoint: Path, change) -> Path:
    """A copy of ``checkpoint`` whose generator weights ``change`` edits in place, saved as torch would."""
    import torch

    payload = torch.load(checkpoint, weights_only=True)
    change(payload["state"]["networks"]["generator"])
    path = tmp_path / "altered.pt"
    torch.save(payload, path)
    return path


def test_a_checkpoint_whose_weights_were_changed_is_refused_and_nothing_is_written(tmp_path, checkpoint, capsys):
    """Bytes changed inside the tensors load without complaint from torch: the digest the checkpoint carries
    catches them, and `upscale` writes no file."""
    lr, _ = _camera_lr(tmp_path, 16, 16)

    def flip(weights):
        first = next(v for v in weights.values() if v.is_floating_point() and v.numel() > 1)
        first.view(-1)[0] += 0.5

    for change in (flip, lambda weights: next(iter(weights.values())).zero_()):
        altered = _altered_checkpoint(tmp_path, checkpoint, change)
        code = main(["upscale", str(lr), str(tmp_path / "sr.png"), "--checkpoint", str(altered)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"affsr: error: {altered}: its content does not match the digest it carries")
        assert not (tmp_path / "sr.png").exists()


def test_a_checkpoint_with_a_nan_weight_is_refused_and_nothing_is_written(tmp_path, checkpoint, capsys):
    """A diverged run saved as is (its digest matches: the NaN is what was saved) gives no all-black image."""
    import torch

    from affsr.training.checkpoint import load, save

    state, settings = load(checkpoint)
    weights = state["networks"]["generator"]
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.numel() > 1)
    weights[name].view(-1)[0] = float("nan")
    save(tmp_path / "nan.pt", state, settings)
    lr, _ = _camera_lr(tmp_path, 16, 16)
    code = main(["upscale", str(lr), str(tmp_path / "sr.png"), "--checkpoint", str(tmp_path / "nan.pt")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "non-finite weights" in err and name in err
    assert not (tmp_path / "sr.png").exists()
    assert torch.isfinite(load(checkpoint)[0]["networks"]["generator"][name]).all()  # the original untouched


def test_a_16_bit_colour_png_is_read_as_16_bit(tmp_path):
    """Pillow reads a 16-bit RGB PNG as 8-bit; affsr reads every sample exactly (even its own output)."""
    from affsr.upscaling.files import read_user_image, write_output

    rng = np.random.default_rng(0)
    levels = rng.integers(0, 65536, size=(3, 9, 11))
    alpha = rng.integers(0, 65536, size=(9, 11))
    write_output(tmp_path / "c16.png", levels / 65535.0, bits=16, alpha=alpha / 65535.0)
    image = read_user_image(tmp_path / "c16.png")
    assert image.bits == 16 and image.pixels.shape == (9, 11, 3)
    assert np.array_equal(np.rint(image.pixels * 65535).astype(int), np.moveaxis(levels, 0, -1))
    assert np.array_equal(np.rint(image.alpha * 65535).astype(int), alpha)
    write_output(tmp_path / "c8.png", levels / 65535.0, bits=8)
    assert read_user_image(tmp_path / "c8.png").bits == 8
    write_output(tmp_path / "c.tif", levels / 65535.0)
    tif = read_user_image(tmp_path / "c.tif")
    assert tif.bits == 16 and np.array_equal(np.rint(tif.pixels * 65535).astype(int), np.moveaxis(levels, 0, -1))


def test_a_16_bit_round_trip_is_exact_at_16_bits(tmp_path, checkpoint, capsys):
    import skimage.data

    Image.fromarray(skimage.data.camera()[60:188, 300:428]).save(tmp_path / "hr.png")
    assert main(["downsample", str(tmp_path / "hr.png"), str(tmp_path / "lr16.png"), "--bits", "16",
                 "--checkpoint", str(checkpoint)]) == 0
    capsys.readouterr()
    assert main(["upscale", str(tmp_path / "lr16.png"), str(tmp_path / "sr16.png"), "--bits", "16",
                 "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "for a 16-bit round trip" in out and "round trip at 16 bits off by 0 levels" in out
    assert main(["downsample", str(tmp_path / "sr16.png"), str(tmp_path / "back16.png"), "--bits", "16",
                 "--checkpoint", str(checkpoint)]) == 0
    from affsr.upscaling.files import read_user_image

    lr, back = read_user_image(tmp_path / "lr16.png"), read_user_image(tmp_path / "back16.png")
    assert lr.bits == back.bits == 16 and np.array_equal(lr.pixels, back.pixels)
    # written as 8-bit instead: one note, and the round trip kept at 8 bits
    assert main(["upscale", str(tmp_path / "lr16.png"), str(tmp_path / "sr8.png"), "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "coarser than the input (16-bit)" in out and "round trip at 8 bits off by 0 levels" in out


def test_a_float_input_gets_the_exact_set(tmp_path, checkpoint, capsys):
    import skimage.data

    hr = skimage.data.camera()[200:328, 100:228].astype(np.float64) / 255.0
    x = Downsampling.gaussian()(torch.from_numpy(hr)[None, None])[0].numpy()  # (1, 32, 32) float
    np.save(tmp_path / "lr.npy", x)
    assert main(["upscale", str(tmp_path / "lr.npy"), str(tmp_path / "sr.npy"), "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "A ŷ = x exactly (a float input)" in out and "projection converged" in out
    sr = np.load(tmp_path / "sr.npy").astype(np.float64)
    assert sr.min() >= 0 and sr.max() <= 1
    again = Downsampling.gaussian()(torch.from_numpy(sr)[None])[0].numpy()
    assert np.abs(again - x).max() <= 1e-6  # float32 file: its rounding, no more


@pytest.mark.parametrize("array", ["nan", "range", "shape"])
def test_a_bad_float_input_is_one_line(tmp_path, checkpoint, capsys, array):
    x = {"nan": np.full((16, 16), np.nan), "range": np.full((16, 16), 2.0), "shape": np.zeros((2, 3, 4, 5))}[array]
    np.save(tmp_path / "lr.npy", x)
    code = main(["upscale", str(tmp_path / "lr.npy"), str(tmp_path / "sr.png"), "--checkpoint", str(checkpoint)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("affsr: error:") and err.count("\n") == 1 and "lr.npy" in err
    assert not (tmp_path / "sr.png").exists()
