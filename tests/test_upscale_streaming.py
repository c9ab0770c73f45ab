"""`affsr upscale` never holds its output whole: bands of rows give the same numbers and the same saved
file as whole images, the work files live beside the output and are gone afterwards, and a disk too
full for them is one line before any work."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from affsr.cli import main
from affsr.operators.downsampling import Downsampling
from affsr.operators.polyphase import Polyphase
from affsr.operators.row_bands import InMemory, a_rows, lr_errors, v_rows

OPERATORS = [Downsampling.gaussian(), Downsampling.gaussian(1.5, 13, 2),
             Downsampling(torch.rand(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3)), 3, (1, 2))]


@pytest.mark.parametrize("op", OPERATORS, ids=["gauss4", "gauss2", "asym3"])
@pytest.mark.parametrize("h,w,rows", [(20, 13, 7), (7, 9, 2), (8, 7, 1), (16, 16, 64)])
def test_bands_of_rows_equal_the_whole_image(op, h, w, rows):
    """v = f + Aᵀz and A g(v), band by band (bands that wrap, bands of one row, one band), equal the
    whole-image maps to round-off."""
    generator = torch.Generator().manual_seed(h * w)
    s = op.scale
    f = torch.rand(2, s * h, s * w, dtype=torch.float64, generator=generator) * 1.4 - 0.2
    z = torch.randn(2, h, w, dtype=torch.float64, generator=generator) * 0.1
    x = torch.rand(2, h, w, dtype=torch.float64, generator=generator)
    v = f + op.adjoint(z[None])[0]
    assert float((v_rows(op, InMemory(f), z, np.arange(h)) - v).abs().max()) < 1e-12
    index = (np.arange(rows) + h - 1) % h  # a band that wraps around the bottom edge
    hr = (index[:, None] * s + np.arange(s)).ravel()
    assert float((v_rows(op, InMemory(f), z, index) - v[:, hr]).abs().max()) < 1e-12
    want = op(v.clamp(0, 1)[None])[0] - x
    got = lr_errors(op, InMemory(f), z, x, lambda t: t.clamp(0, 1), rows=rows)
    assert got.shape == want.shape and float((got - want).abs().max()) < 1e-12
    assert float((a_rows(op, InMemory(f), None, 1, min(h, 3)) - op(f[None])[0][:, 1:min(h, 3)]).abs().max()) < 1e-12


@pytest.mark.parametrize("op", OPERATORS, ids=["gauss4", "gauss2", "asym3"])
def test_the_lr_grid_gram_inverse_equals_downsamplings(op):
    """(A Aᵀ)⁺ from A Aᵀ's few lags on a small grid = Downsampling's, built from an HR impulse."""
    for h, w in [(7, 8), (16, 40), (33, 8)]:
        x = torch.rand(1, 2, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(h))
        want = op.gram_inverse(x)
        assert float((Polyphase(op).gram_inverse(x) - want).abs().max()) <= 1e-11 * float(want.abs().max())


def test_the_raw_output_comes_in_bands_each_row_once(checkpoint_and_model):
    """raw_bands hands on each HR row once, top to bottom, and the bands are the blend of the tiles
    computed in one buffer."""
    from affsr.upscaling.tiles import _ramp, _starts, raw_bands

    model = checkpoint_and_model[1]
    lr = np.random.default_rng(0).random((1, 37, 23))
    s = int(model.op.scale)
    for tile, overlap in [(64, 8), (12, 4), (7, 2)]:
        parts = list(raw_bands(model, lr, tile, overlap))
        assert [top for top, _ in parts] == list(np.cumsum([0] + [p.shape[1] for _, p in parts[:-1]]))
        got = np.concatenate([p for _, p in parts], axis=1)
        raw, weight = np.zeros((1, s * 37, s * 23)), np.zeros((s * 37, s * 23))
        th, tw = min(tile, 37), min(tile, 23)
        with torch.no_grad():
            for top in _starts(37, tile, overlap):
                for left in _starts(23, tile, overlap):
                    f = model.generator(torch.from_numpy(lr[None, :, top:top + th, left:left + tw]).float()).double()[0].numpy()
                    ramp = np.outer(_ramp(s * th, min(s * overlap, s * th // 2) if th < 37 else 0),
                                    _ramp(s * tw, min(s * overlap, s * tw // 2) if tw < 23 else 0))
                    raw[:, s * top:s * (top + th), s * left:s * (left + tw)] += f * ramp
                    weight[s * top:s * (top + th), s * left:s * (left + tw)] += ramp
        assert got.shape == raw.shape and np.array_equal(got, raw / weight)


@pytest.fixture(scope="module")
def checkpoint_and_model(affmse_checkpoint):
    """The tiny study's projected grey model (a few steps of affmse) and its SRModel."""
    from affsr.training.checkpoint import load_model

    return affmse_checkpoint, load_model(affmse_checkpoint)[0]


def _lr(tmp_path: Path, bits: int = 8) -> Path:
    """An 8-bit LR made by A from a camera crop (dark coat, bright sky: the network's output leaves [0, 1]
    there, so the projection has work)."""
    import skimage.data

    hr = skimage.data.camera()[40:40 + 4 * 45, 100:100 + 4 * 30]
    Image.fromarray(hr).save(tmp_path / "hr.png")
    assert main(["downsample", str(tmp_path / "hr.png"), str(tmp_path / "lr.png"), "--bits", str(bits),
                 "--operator", "gaussian", "--boundary", "circular", "--scale", "4"]) == 0
    return tmp_path / "lr.png"


@pytest.mark.parametrize("name", ["sr.png", "sr.tif", "sr.npy"])
def test_small_bands_write_the_same_file_as_large_ones(tmp_path, checkpoint_and_model, monkeypatch, capsys, name):
    """Bands of 3 LR rows, tile-row chunks of one band and 1 KB file bands give byte-identical files (and
    --raw arrays) to the defaults: banding is not part of the answer. The round trip is exact, and the
    work folder is gone."""
    from affsr.operators import local_projection, row_bands
    from affsr.upscaling import files

    checkpoint = str(checkpoint_and_model[0])
    lr = _lr(tmp_path)
    outputs = {}
    for label in ("default", "small"):
        if label == "small":
            monkeypatch.setattr(row_bands, "BAND_ROWS", 3)
            monkeypatch.setattr(local_projection, "CHUNK_VALUES", 1)
            monkeypatch.setattr(files, "WRITE_BAND_BYTES", 1024)
        folder = tmp_path / label
        folder.mkdir()
        assert main(["upscale", str(lr), str(folder / name), "--checkpoint", checkpoint,
                     "--raw", str(folder / "raw.npy")]) == 0
        out = capsys.readouterr().out
        assert "note: projection" in out and "round trip at 8 bits off by 0 levels" in out
        outputs[label] = ((folder / name).read_bytes(), np.load(folder / "raw.npy"))
        assert sorted(p.name for p in folder.iterdir()) == sorted([name, "raw.npy"])  # no work folder left
    if name.endswith(".tif"):  # the strips follow the bands: compare the pixels
        import io

        import tifffile

        assert np.array_equal(*(tifffile.imread(io.BytesIO(outputs[k][0])) for k in ("small", "default")))
    else:
        assert outputs["small"][0] == outputs["default"][0]
    assert np.array_equal(outputs["small"][1], outputs["default"][1])


def test_a_stale_work_folder_is_removed_and_a_live_one_kept(tmp_path, checkpoint_and_model):
    """A work folder of a killed run (its pid gone) is removed by the next upscale of that output; one of a
    live process is not."""
    import subprocess

    lr = _lr(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f".sr.png.{gone.pid}.abc123.work"
    live = tmp_path / f".sr.png.{os.getppid()}.def456.work"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "f.bin").write_bytes(b"\0" * 100)
    assert main(["upscale", str(lr), str(tmp_path / "sr.png"), "--checkpoint", str(checkpoint_and_model[0])]) == 0
    assert not stale.exists() and live.exists()


def test_a_disk_too_full_for_the_work_files_is_one_line_before_any_work(tmp_path, checkpoint_and_model, monkeypatch,
                                                                         capsys):
    import shutil
    from collections import namedtuple

    from affsr.upscaling import tiles

    lr = _lr(tmp_path)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5000, 5000))

    def never(*args, **kwargs):
        raise AssertionError("the model ran although the disk was full")

    monkeypatch.setattr(tiles, "raw_bands", never)
    monkeypatch.setattr("affsr.upscaling.verbs.raw_bands", never)
    code = main(["upscale", str(lr), str(tmp_path / "out" / "sr.png"), "--checkpoint", str(checkpoint_and_model[0])])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "GB free" in err and "sr.png" in err
    assert not (tmp_path / "out").exists()  # the folder made for the output is removed again
