"""Tests for affsr.data: determinism, split disjointness, x = A y for stored pairs, errors, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from affsr import data, sources
from affsr.data import DataError, band_ranges, load_manifest, load_positions, load_split, prepare
from affsr.operators import Downsampling

HR = 32
COUNTS = dict(n_train=12, n_val=5, n_test=4)


@pytest.fixture(scope="module")
def op() -> Downsampling:
    return Downsampling.gaussian(sigma=1.0, size=9, scale=4)


@pytest.fixture(scope="module")
def grass_dir(tmp_path_factory, op) -> Path:
    out = tmp_path_factory.mktemp("grass")
    prepare("skimage_grass", out, HR, op, seed=0, **COUNTS)
    return out


def _arrays(d: Path, split: str) -> dict[str, np.ndarray]:
    with np.load(d / f"{split}.npz") as z:
        return {k: z[k] for k in z.files}


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


def test_load_split_types_and_range(grass_dir):
    lr, hr = load_split(grass_dir, "val")
    assert lr.dtype == torch.float32 and hr.dtype == torch.float32
    assert lr.shape == (5, 1, 8, 8) and hr.shape == (5, 1, 32, 32)
    assert 0.0 <= float(hr.min()) and float(hr.max()) <= 1.0
    raw = _arrays(grass_dir, "val")
    np.testing.assert_array_equal(hr.numpy() * 255.0, raw["hr"].astype(np.float32))
    np.testing.assert_array_equal(lr.numpy(), raw["lr"])


def test_stored_pair_satisfies_x_equals_Ay(grass_dir, op):
    for split in data.SPLITS:
        a = _arrays(grass_dir, split)
        y = torch.from_numpy(a["hr"].astype(np.float64) / 255.0)
        x = op(y).numpy()
        # float32 round-off of values in [0, 1]: |error| ≤ 2^-24 · |x|
        np.testing.assert_allclose(a["lr"].astype(np.float64), x, rtol=0, atol=6e-8)
        # And not quantised to uint8: LR values are not all multiples of 1/255.
        assert not np.allclose(a["lr"] * 255.0, np.round(a["lr"] * 255.0), atol=1e-3)


def test_patches_are_the_source_pixels_at_recorded_positions(grass_dir):
    img = data.load_source("skimage_grass")[0]
    for split in data.SPLITS:
        a = _arrays(grass_dir, split)
        for k, (i, r, c) in enumerate(a["positions"]):
            assert i == 0
            expected = np.rint(img[:, r : r + HR, c : c + HR] * 255).astype(np.uint8)
            np.testing.assert_array_equal(a["hr"][k], expected)
    np.testing.assert_array_equal(load_positions(grass_dir, "test"), _arrays(grass_dir, "test")["positions"])


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


# ---- disjoint splits ------------------------------------------------------------------------------------


def test_band_ranges_tile_the_image():
    for height in (512, 300, 427, 64, 71):
        b = band_ranges(height)
        assert b["train"][0] == 0 and b["test"][1] == height
        assert b["train"][1] == b["val"][0] and b["val"][1] == b["test"][0]
        assert all(r0 < r1 for r0, r1 in b.values())


def test_splits_are_disjoint(grass_dir):
    m = load_manifest(grass_dir)
    ranges = [tuple(m["bands"][s][0]) for s in data.SPLITS]
    for i in range(len(ranges)):
        for j in range(i + 1, len(ranges)):
            (a0, a1), (b0, b1) = ranges[i], ranges[j]
            assert a1 <= b0 or b1 <= a0, f"bands {ranges[i]} and {ranges[j]} overlap"
    used = {}
    for split in data.SPLITS:
        r0, r1 = m["bands"][split][0]
        pos = _arrays(grass_dir, split)["positions"]
        rows, cols = pos[:, 1], pos[:, 2]
        assert (rows >= r0).all() and (rows + HR <= r1).all(), f"{split} patch outside rows [{r0}, {r1})"
        assert (cols >= 0).all() and (cols + HR <= 512).all()
        mask = np.zeros((512, 512), bool)
        for _, r, c in pos:
            mask[r : r + HR, c : c + HR] = True
        used[split] = mask
    assert not (used["train"] & used["val"]).any()
    assert not (used["train"] & used["test"]).any()
    assert not (used["val"] & used["test"]).any()


def test_colour_source_and_multiple_images(tmp_path, op, monkeypatch):
    rng = np.random.default_rng(5)
    images = [rng.random((96, 80, 3)), rng.random((160, 128, 3))]
    monkeypatch.setitem(sources.SOURCES, "toy_rgb",
                        sources.Source("patches", "embedded", True, "two random images", lambda spec, seed: images))
    m = prepare("toy_rgb", tmp_path, 12, op, n_train=40, n_val=6, n_test=6, seed=3)
    assert m["channels"] == 3
    assert m["bands"]["val"] == [[72, 84], [120, 140]]
    lr, hr = load_split(tmp_path, "train")
    assert hr.shape == (40, 3, 12, 12) and lr.shape == (40, 3, 3, 3)
    pos = load_positions(tmp_path, "train")
    assert set(pos[:, 0].tolist()) == {0, 1}
    for split in data.SPLITS:
        pos = load_positions(tmp_path, split)
        for i, r, _ in pos:
            r0, r1 = m["bands"][split][i]
            assert r0 <= r and r + 12 <= r1


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


def test_hr_size_larger_than_band(tmp_path, op):
    with pytest.raises(DataError, match=r"hr_size=80 exceeds the val band height 64") as e:
        prepare("skimage_grass", tmp_path, 80, op, n_train=1, n_val=1, n_test=1, seed=0)
    assert "hr_size ≤ 64" in str(e.value)


def test_unknown_source_and_split(tmp_path, op, grass_dir):
    with pytest.raises(DataError, match="unknown data source 'nope'.*skimage_grass"):
        prepare("nope", tmp_path, HR, op, seed=0, **COUNTS)
    with pytest.raises(DataError, match="unknown split 'validation'"):
        load_split(grass_dir, "validation")


def test_missing_file_message(tmp_path):
    with pytest.raises(DataError) as e:
        load_split(tmp_path, "train")
    msg = str(e.value)
    assert str(tmp_path / "train.npz") in msg and "affsr prepare" in msg
    with pytest.raises(DataError, match="manifest.*not found.*affsr prepare"):
        load_manifest(tmp_path)


def test_missing_key_message(tmp_path):
    np.savez(tmp_path / "train.npz", hr=np.zeros((1, 1, 8, 8), np.uint8))
    with pytest.raises(DataError) as e:
        load_split(tmp_path, "train")
    msg = str(e.value)
    assert str(tmp_path / "train.npz") in msg and "lr" in msg and "affsr prepare" in msg


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_file_message(tmp_path, grass_dir, damage):
    good = (grass_dir / "train.npz").read_bytes()
    bad = good[: len(good) // 2] if damage == "truncate" else b"not a zip file at all" * 10
    (tmp_path / "train.npz").write_bytes(bad)
    with pytest.raises(DataError, match="corrupt") as e:
        load_split(tmp_path, "train")
    assert str(tmp_path / "train.npz") in str(e.value)


@pytest.mark.parametrize("offset", [200, 3000])  # damages the npy header / the array data (bad CRC)
def test_corrupt_member_message(tmp_path, grass_dir, offset):
    """A zip whose directory is intact but whose compressed payload is damaged is also reported."""
    good = bytearray((grass_dir / "train.npz").read_bytes())
    start = good.find(b"hr.npy") + offset  # inside the first member's compressed data
    good[start : start + 64] = bytes(64)
    (tmp_path / "train.npz").write_bytes(bytes(good))
    with pytest.raises(DataError, match=r"train\.npz.*corrupt"):
        load_split(tmp_path, "train")


def test_corrupt_manifest_message(tmp_path):
    (tmp_path / "manifest.json").write_text("{ not json")
    with pytest.raises(DataError, match=r"manifest\.json.*corrupt"):
        load_manifest(tmp_path)


# ---- atomic writes --------------------------------------------------------------------------------------


def test_no_temp_files_left(grass_dir):
    names = [p.name for p in grass_dir.iterdir()]
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, op, monkeypatch, grass_dir):
    prepare("skimage_grass", tmp_path, HR, op, seed=0, **COUNTS)
    before = (tmp_path / "train.npz").read_bytes()

    def broken(f, **arrays):
        f.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(data.np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        prepare("skimage_grass", tmp_path, HR, op, seed=7, **COUNTS)
    assert (tmp_path / "train.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.npz", "train.npz", "val.npz"]
    # The manifest was removed before writing, so the incomplete set is not mistaken for a finished one.
    with pytest.raises(DataError, match="manifest"):
        load_manifest(tmp_path)


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


def test_natural_photos_are_colour_patches_from_four_images(tmp_path, op):
    m = prepare("skimage_photos", tmp_path, 32, op, n_train=200, n_val=20, n_test=20, seed=0)
    assert m["layout"] == "patches" and m["channels"] == 3 and len(m["image_shapes"]) == 4
    assert set(load_positions(tmp_path, "train")[:, 0].tolist()) == {0, 1, 2, 3}
    lr, hr = load_split(tmp_path, "val")
    assert hr.shape == (20, 3, 32, 32) and lr.shape == (20, 3, 8, 8)
    assert (hr[:, 0] != hr[:, 1]).any()  # really colour, not grey copied three times


def test_hr_bytes_matches_float(grass_dir):
    lr, hr = load_split(grass_dir, "train")
    lr_b, hr_b = load_split(grass_dir, "train", hr_bytes=True)
    assert hr_b.dtype == torch.uint8 and torch.equal(data.hr_to_float(hr_b), hr) and torch.equal(lr, lr_b)


def test_external_source_without_its_file(tmp_path, op):
    with pytest.raises(DataError, match="downloaded file or a local folder"):
        prepare("celeba", tmp_path, 64, op, n_train=1, n_val=1, n_test=1, seed=0)
