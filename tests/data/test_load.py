"""Tests for affsr.data.load: reading a prepared data set (types, ranges) and the DataErrors for missing,
incomplete or corrupt files, each naming the file and saying to re-run ``affsr prepare``."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from affsr.errors import DataError
from affsr.data.load import hr_to_float, load_manifest, load_positions, load_split

from conftest import npz_arrays as _arrays


def test_load_split_types_and_range(grass_dir):
    lr, hr = load_split(grass_dir, "val")
    assert lr.dtype == torch.float32 and hr.dtype == torch.float32
    assert lr.shape == (5, 1, 8, 8) and hr.shape == (5, 1, 32, 32)
    assert 0.0 <= float(hr.min()) and float(hr.max()) <= 1.0
    raw = _arrays(grass_dir, "val")
    np.testing.assert_array_equal(hr.numpy() * 255.0, raw["hr"].astype(np.float32))
    np.testing.assert_array_equal(lr.numpy(), raw["lr"])


def test_hr_bytes_matches_float(grass_dir):
    lr, hr = load_split(grass_dir, "train")
    lr_b, hr_b = load_split(grass_dir, "train", hr_bytes=True)
    assert hr_b.dtype == torch.uint8 and torch.equal(hr_to_float(hr_b), hr) and torch.equal(lr, lr_b)


def test_unknown_split(grass_dir):
    with pytest.raises(DataError, match="unknown split 'validation'"):
        load_split(grass_dir, "validation")


def test_positions_of_an_images_layout_set_are_a_data_error(tmp_path):
    np.savez(tmp_path / "test.npz", hr=np.zeros((1, 1, 8, 8), np.uint8), lr=np.zeros((1, 1, 2, 2), np.float32),
             names=np.array(["a.jpg"]))
    with pytest.raises(DataError, match=r"test\.npz lacks key positions"):
        load_positions(tmp_path, "test")


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

