"""Tests for affsr.data.image_collections: the collection interface, in-memory images and the ImageNet folder.

Every ImageNet test builds a real folder of JPEGs (via Pillow) under tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affsr.errors import DataError
from affsr.data.image_collections import ArrayImages, FolderImages, imagenet_collection

from image_bytes import encode as _encode
from image_bytes import random_rgb as _rgb


def test_array_images_reads_by_index_and_rejects_overlap():
    faces = [np.full((25, 25), i / 10) for i in range(4)]
    col = ArrayImages(faces, {"train": ["0", "1"], "val": ["2"], "test": ["3"]})
    assert col.read("2")[0, 0] == pytest.approx(0.2)
    with pytest.raises(DataError, match="disjoint"):
        ArrayImages(faces, {"train": ["0", "1"], "val": ["1"], "test": ["3"]})


def test_collection_needs_exactly_the_three_splits():
    with pytest.raises(DataError, match="expected exactly train, val, test"):
        ArrayImages([np.zeros((4, 4))] * 2, {"train": ["0"], "val": ["1"]})
    with pytest.raises(DataError, match=r"not indices of the 2 images"):
        ArrayImages([np.zeros((4, 4))] * 2, {"train": ["0"], "val": ["1"], "test": ["7"]})


def test_folder_images_reads_and_names_a_missing_file(tmp_path):
    px = _rgb(5, 6)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(_encode(px))
    with FolderImages(tmp_path, {"train": ["a/x.png"], "val": [], "test": ["a/gone.png"]}, colour=True) as col:
        np.testing.assert_array_equal(col.read("a/x.png") * 255, px)
        with pytest.raises(DataError, match=r"a/gone\.png cannot be read"):
            col.read("a/gone.png")


# ---- ImageNet -------------------------------------------------------------------------------------------

MIN_BYTES = 2000


def _imagenet_tree(root: Path, n_classes: int = 4, per_class: int = 10) -> set[str]:
    """Fake ILSVRC2012_img_train tree; every third image is below MIN_BYTES. Returns the small ones."""
    small = set()
    jpeg = _encode(_rgb(8, 8), "JPEG")
    assert len(jpeg) < MIN_BYTES
    for c in range(n_classes):
        wnid = f"n{c:08d}"
        (root / wnid).mkdir(parents=True)
        for j in range(per_class):
            suffix = (".JPEG", ".jpeg", ".jpg")[j % 3]
            rel = f"{wnid}/{wnid}_{j}{suffix}"
            big = j % 3 != 0
            (root / rel).write_bytes(jpeg + b"\0" * MIN_BYTES if big else jpeg)  # JPEG ignores trailing bytes
            if not big:
                small.add(rel)
        (root / wnid / "notes.txt").write_text("not an image")
    return small


def test_imagenet_drops_small_files_and_splits(tmp_path):
    root = tmp_path / "ILSVRC2012_img_train"
    small = _imagenet_tree(root)
    counts = {"train": 100, "val": 3, "test": 2}
    col = imagenet_collection(root, MIN_BYTES, 10, counts, seed=0)
    everything = [n for v in col.splits.values() for n in v]
    assert len(everything) == len(set(everything)) == 40 - len(small)
    assert not set(everything) & small and all(n.count("/") == 1 for n in everything)
    assert (len(col.splits["val"]), len(col.splits["test"])) == (3, 2)
    assert col.splits == imagenet_collection(root, MIN_BYTES, 10, counts, seed=0).splits
    capped = imagenet_collection(root, MIN_BYTES, 10, {**counts, "train": 5}, seed=0)
    assert len(capped.splits["train"]) == 5
    y = col.read(col.splits["train"][0])
    assert y.shape == (8, 8, 3) and y.dtype == np.float64


def test_imagenet_layout_errors(tmp_path):
    counts = {"train": 10, "val": 1, "test": 1}
    with pytest.raises(DataError, match=r"not found.*n01440764/n01440764_10026\.JPEG"):
        imagenet_collection(tmp_path / "nowhere", 0, 1, counts, seed=0)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DataError, match=r"not a folder.*n01440764"):
        imagenet_collection(a_file, 0, 1, counts, seed=0)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "n01440764.tar").write_bytes(b"")
    with pytest.raises(DataError, match=r"no images.*found 1 \.tar.*n01440764"):
        imagenet_collection(tmp_path / "empty", 0, 1, counts, seed=0)
    _imagenet_tree(tmp_path / "few", n_classes=1, per_class=3)
    with pytest.raises(DataError, match=r"found only 3 images.*min_files=1000.*n01440764"):
        imagenet_collection(tmp_path / "few", 0, 1000, counts, seed=0)
    with pytest.raises(DataError, match=r"1 of 3 images are smaller than min_bytes=2000.*only 2 images"):
        imagenet_collection(tmp_path / "few", MIN_BYTES, 1, {"train": 10, "val": 1, "test": 1}, seed=0)

