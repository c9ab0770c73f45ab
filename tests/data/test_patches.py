"""Tests for affsr.data.patches: patches are the source's pixels at their recorded positions, lie wholly inside
their split's row band (so splits share no pixel), and bad sources or sizes are DataErrors."""

from __future__ import annotations


import numpy as np
import pytest

from affsr.data import sources
from affsr.config.data import SPLITS
from affsr.data.load import load_manifest, load_positions, load_split
from affsr.data.prepare import prepare
from affsr.errors import DataError
from affsr.data.patches import load_source

from conftest import GRASS32_HR as HR
from conftest import npz_arrays as _arrays


def test_patches_are_the_source_pixels_at_recorded_positions(grass_dir):
    img = load_source("skimage_grass")[0]
    for split in SPLITS:
        a = _arrays(grass_dir, split)
        for k, (i, r, c) in enumerate(a["positions"]):
            assert i == 0
            expected = np.rint(img[:, r : r + HR, c : c + HR] * 255).astype(np.uint8)
            np.testing.assert_array_equal(a["hr"][k], expected)
    np.testing.assert_array_equal(load_positions(grass_dir, "test"), _arrays(grass_dir, "test")["positions"])


def test_splits_are_disjoint(grass_dir):
    m = load_manifest(grass_dir)
    ranges = [tuple(m["bands"][s][0]) for s in SPLITS]
    for i in range(len(ranges)):
        for j in range(i + 1, len(ranges)):
            (a0, a1), (b0, b1) = ranges[i], ranges[j]
            assert a1 <= b0 or b1 <= a0, f"bands {ranges[i]} and {ranges[j]} overlap"
    used = {}
    for split in SPLITS:
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
    for split in SPLITS:
        pos = load_positions(tmp_path, split)
        for i, r, _ in pos:
            r0, r1 = m["bands"][split][i]
            assert r0 <= r and r + 12 <= r1


def test_hr_size_larger_than_band(tmp_path, op):
    with pytest.raises(DataError, match=r"hr_size=80 exceeds the val band height 64") as e:
        prepare("skimage_grass", tmp_path, 80, op, n_train=1, n_val=1, n_test=1, seed=0)
    assert "hr_size ≤ 64" in str(e.value)


def test_natural_photos_are_colour_patches_from_four_images(tmp_path, op):
    m = prepare("skimage_photos", tmp_path, 32, op, n_train=200, n_val=20, n_test=20, seed=0)
    assert m["layout"] == "patches" and m["channels"] == 3 and len(m["image_shapes"]) == 4
    assert set(load_positions(tmp_path, "train")[:, 0].tolist()) == {0, 1, 2, 3}
    lr, hr = load_split(tmp_path, "val")
    assert hr.shape == (20, 3, 32, 32) and lr.shape == (20, 3, 8, 8)
    assert (hr[:, 0] != hr[:, 1]).any()  # really colour, not grey copied three times


def _register(monkeypatch, images, layout="patches"):
    monkeypatch.setitem(sources.SOURCES, "custom",
                        sources.Source(layout, "embedded", False, "test images", lambda spec, seed: images))


def test_load_source_gives_channels_first_floats(monkeypatch):
    grey, rgb = np.full((6, 5), 0.5), np.random.default_rng(0).random((6, 5, 3))
    _register(monkeypatch, [grey])
    (a,) = load_source("custom")
    assert a.shape == (1, 6, 5) and a.dtype == np.float64
    _register(monkeypatch, [rgb])
    np.testing.assert_array_equal(load_source("custom")[0], rgb.transpose(2, 0, 1))


@pytest.mark.parametrize("images, match", [
    ([], "returned no images"),
    ([np.zeros((4, 4, 2))], r"shape \(4, 4, 2\)"),
    ([np.full((4, 4), 1.5)], r"outside \[0, 1\]"),
    ([np.zeros((4, 4)), np.zeros((4, 4, 3))], "mixes grey and colour"),
])
def test_load_source_rejects_bad_images(monkeypatch, images, match):
    _register(monkeypatch, images)
    with pytest.raises(DataError, match=f"data source 'custom'.*{match}|{match}"):
        load_source("custom")


def test_load_source_refuses_an_image_collection():
    with pytest.raises(DataError, match="'skimage_faces' is a collection of whole images"):
        load_source("skimage_faces")
