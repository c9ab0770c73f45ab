"""Tests for affsr.data (``prepare``): files and manifest, x = A y for stored pairs, determinism, the
images layout (faces, mirroring), user errors and atomic writes. Patch cutting is tested in test_patches.py,
reading a prepared set in test_prepared.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from affsr.data import prepare as data
from affsr.errors import DataError
from affsr.data.load import load_manifest, load_split
from affsr.data.prepare import prepare

from conftest import GRASS32_COUNTS as COUNTS
from conftest import GRASS32_HR as HR
from conftest import npz_arrays as _arrays


# ---- files and formats ----------------------------------------------------------------------------------


def test_files_formats_and_manifest(grass_dir, op):
    assert sorted(p.name for p in grass_dir.iterdir()) == ["manifest.json", "test.npz", "train.npz", "val.npz"]
    for split, n in zip(data.SPLITS, COUNTS.values()):
        a = _arrays(grass_dir, split)
        assert set(a) == {"hr", "lr", "positions"}
        assert a["hr"].dtype == np.uint8 and a["hr"].shape == (n, 1, HR, HR)
        assert a["lr"].dtype == np.float32 and a["lr"].shape == (n, 1, HR // 4, HR // 4)
        assert a["positions"].shape == (n, 3) and np.issubdtype(a["positions"].dtype, np.integer)
    m = load_manifest(grass_dir)
    assert m == json.loads((grass_dir / "manifest.json").read_text())
    assert m["source"] == "skimage_grass" and m["hr_size"] == HR and m["lr_size"] == HR // 4 and m["scale"] == 4
    assert m["counts"] == {"train": 12, "val": 5, "test": 4}
    assert m["seed"] == 0 and m["channels"] == 1
    assert m["operator"] == op.describe()
    assert m["bands"] == {"train": [[0, 384]], "val": [[384, 448]], "test": [[448, 512]]}


def test_stored_pair_satisfies_x_equals_Ay(grass_dir, op):
    for split in data.SPLITS:
        a = _arrays(grass_dir, split)
        y = torch.from_numpy(a["hr"].astype(np.float64) / 255.0)
        x = op(y).numpy()
        # float32 round-off of values in [0, 1]: |error| ≤ 2^-24 · |x|
        np.testing.assert_allclose(a["lr"].astype(np.float64), x, rtol=0, atol=6e-8)
        # And not quantised to uint8: LR values are not all multiples of 1/255.
        assert not np.allclose(a["lr"] * 255.0, np.round(a["lr"] * 255.0), atol=1e-3)


# ---- determinism ----------------------------------------------------------------------------------------


def test_same_seed_identical_different_seed_different(tmp_path, op, grass_dir):
    prepare("skimage_grass", tmp_path / "same", HR, op, seed=0, **COUNTS)
    prepare("skimage_grass", tmp_path / "other", HR, op, seed=1, **COUNTS)
    for split in data.SPLITS:
        a, same, other = (_arrays(d, split) for d in (grass_dir, tmp_path / "same", tmp_path / "other"))
        for key in ("hr", "lr", "positions"):
            np.testing.assert_array_equal(a[key], same[key])
        assert not np.array_equal(a["positions"], other["positions"])
        assert not np.array_equal(a["hr"], other["hr"])


def test_val_and_test_do_not_depend_on_n_train(tmp_path, op, grass_dir):
    prepare("skimage_grass", tmp_path, HR, op, n_train=3, n_val=5, n_test=4, seed=0)
    for split in ("val", "test"):
        np.testing.assert_array_equal(_arrays(tmp_path, split)["hr"], _arrays(grass_dir, split)["hr"])


def test_astronaut_is_colour(tmp_path, op):
    m = prepare("skimage_astronaut", tmp_path, 32, op, n_train=2, n_val=1, n_test=1, seed=0)
    lr, hr = load_split(tmp_path, "test")
    assert m["channels"] == 3 and hr.shape == (1, 3, 32, 32) and lr.shape == (1, 3, 8, 8)


# ---- user errors ----------------------------------------------------------------------------------------


def test_hr_size_not_divisible_by_scale(tmp_path, op):
    with pytest.raises(DataError, match=r"hr_size=30 .*scale=4") as e:
        prepare("skimage_grass", tmp_path, 30, op, n_train=1, n_val=1, n_test=1, seed=0)
    assert "\n" not in str(e.value)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_unknown_source(tmp_path, op):
    with pytest.raises(DataError, match="unknown data source 'nope'.*skimage_grass"):
        prepare("nope", tmp_path, HR, op, seed=0, **COUNTS)


# ---- atomic writes --------------------------------------------------------------------------------------


def test_no_temp_files_left(grass_dir):
    names = [p.name for p in grass_dir.iterdir()]
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names


def test_failed_write_leaves_the_old_data_set_whole_and_no_temp(tmp_path, op, monkeypatch, grass_dir):
    prepare("skimage_grass", tmp_path, HR, op, seed=0, **COUNTS)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    calls = []

    def broken_third(f, **arrays):  # train and val are written, test fails
        calls.append(1)
        if len(calls) == 3:
            f.write(b"PK partial")
            raise OSError("disk full")
        np.savez(f, **arrays)

    monkeypatch.setattr(np, "savez_compressed", broken_third)
    with pytest.raises(OSError, match="disk full"):
        prepare("skimage_grass", tmp_path, HR, op, seed=7, **COUNTS)
    # The splits and the manifest land together or not at all: the earlier data set is whole and loads.
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert load_manifest(tmp_path)["seed"] == 0


# ---- the three embedded domains -----------------------------------------------------------------------


def test_faces_are_whole_images_split_by_image(tmp_path, op):
    """LFW faces: one centred 24×24 crop per face (no resampling), no face in two splits."""
    import skimage.data

    m = prepare("skimage_faces", tmp_path, 24, op, n_train=100, n_val=100, n_test=100, seed=0, crop=(24,))
    assert m["layout"] == "images" and m["channels"] == 1
    counts = m["counts"]  # 100 faces, 75 / 12.5 / 12.5 % (rounded)
    assert sum(counts.values()) == 100 and abs(counts["train"] - 75) <= 1 and min(counts.values()) >= 12
    names = {}
    for split in data.SPLITS:
        with np.load(tmp_path / f"{split}.npz") as z:
            names[split] = set(z["names"].tolist())
            hr = z["hr"]
        assert hr.shape == (m["counts"][split], 1, 24, 24)
    assert not names["train"] & names["val"] and not names["train"] & names["test"]
    assert not names["val"] & names["test"]
    assert len(names["train"] | names["val"] | names["test"]) == 100
    # the stored HR is exactly the centred crop of the named face (offset 0 of a 25×25 image)
    with np.load(tmp_path / "test.npz") as z:
        first, hr0 = int(z["names"][0]), z["hr"][0, 0]
    face = skimage.data.lfw_subset()[first]
    assert np.array_equal(hr0, np.rint(face[:24, :24] * 255).astype(np.uint8))
    lr, hr_f = load_split(tmp_path, "test")
    assert torch.allclose(op(hr_f.double()).float(), lr, atol=1e-6)


def test_mirror_train_adds_exact_mirrored_pairs_to_train_only(tmp_path, op):
    plain = prepare("skimage_faces", tmp_path / "a", 24, op, n_train=10, n_val=3, n_test=2, seed=0, crop=(24,))
    m = prepare("skimage_faces", tmp_path / "b", 24, op, n_train=10, n_val=3, n_test=2, seed=0, crop=(24,),
                mirror_train=True)
    assert m["counts"] == {"train": 20, "val": 3, "test": 2} and m["mirror_train"] and not plain["mirror_train"]
    with np.load(tmp_path / "a" / "train.npz") as za, np.load(tmp_path / "b" / "train.npz") as zb:
        assert np.array_equal(zb["hr"][:10], za["hr"]) and np.array_equal(zb["hr"][10:], za["hr"][..., ::-1])
        assert zb["names"][10].endswith(" (mirrored)") and zb["names"][10].startswith(za["names"][0])
    lr, hr = load_split(tmp_path / "b", "train")
    assert torch.allclose(op(hr.double()).float(), lr, atol=1e-6)  # x = A y for the mirrored ones too
    # not the mirrored LR: A's grid (LR pixel i at HR 4i) is not symmetric under a mirror
    assert not torch.allclose(lr[10:], lr[:10].flip(-1), atol=1e-3)
    for split in ("val", "test"):
        assert (tmp_path / "a" / f"{split}.npz").read_bytes() == (tmp_path / "b" / f"{split}.npz").read_bytes()


def test_faces_caps_and_seed(tmp_path, op):
    a = prepare("skimage_faces", tmp_path / "a", 24, op, n_train=10, n_val=3, n_test=2, seed=0, crop=(24,))
    assert a["counts"] == {"train": 10, "val": 3, "test": 2}
    prepare("skimage_faces", tmp_path / "b", 24, op, n_train=10, n_val=3, n_test=2, seed=1, crop=(24,))
    with np.load(tmp_path / "a" / "test.npz") as za, np.load(tmp_path / "b" / "test.npz") as zb:
        assert za["names"].tolist() != zb["names"].tolist()


def test_external_source_without_its_file(tmp_path, op):
    with pytest.raises(DataError, match="downloaded file or a local folder"):
        prepare("celeba", tmp_path, 64, op, n_train=1, n_val=1, n_test=1, seed=0)
