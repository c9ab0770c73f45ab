"""Tests for affsr.data.archives: CelebA's zip (official partition), zip members read lazily, textures.

Every test builds real files (PNG / JPEG via Pillow, zip archives via zipfile) under tmp_path.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from affsr.data import archives as image_archives
from affsr.errors import DataError
from affsr.data.archives import ZipImages, celeba_collection, texture_images

from image_bytes import RNG
from image_bytes import encode as _encode
from image_bytes import random_rgb as _rgb


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# ---- CelebA ---------------------------------------------------------------------------------------------

CELEBA_NUMBERS = [1, 2, 3, 162770, 162771, 182637, 182638, 202599]


@pytest.fixture(scope="module")
def celeba_zip(tmp_path_factory) -> Path:
    jpeg = _encode(_rgb(8, 8), "JPEG")
    members = {f"img_align_celeba/{k:06d}.jpg": jpeg for k in reversed(CELEBA_NUMBERS)}
    members["img_align_celeba/"] = b""
    members["__MACOSX/img_align_celeba/._000004.jpg"] = b"junk"
    return _write_zip(tmp_path_factory.mktemp("celeba") / "img_align_celeba.zip", members)


def test_celeba_official_partition_at_the_boundaries(celeba_zip):
    with celeba_collection(celeba_zip, {"train": 100, "val": 100, "test": 100}) as col:
        names = {s: [int(Path(n).stem) for n in v] for s, v in col.splits.items()}
        assert names == {"train": [1, 2, 3, 162770], "val": [162771, 182637], "test": [182638, 202599]}
        y = col.read(col.splits["test"][0])
        assert y.shape == (8, 8, 3) and y.dtype == np.float64 and 0 <= y.min() and y.max() <= 1


def test_celeba_caps_take_the_first_images(celeba_zip):
    col = celeba_collection(celeba_zip, {"train": 2, "val": 1, "test": 0})
    assert col.splits == {
        "train": ["img_align_celeba/000001.jpg", "img_align_celeba/000002.jpg"],
        "val": ["img_align_celeba/162771.jpg"],
        "test": [],
    }


def test_celeba_missing_caps_mean_no_cap(celeba_zip):
    col = celeba_collection(celeba_zip, {"val": 1})
    assert [len(col.splits[s]) for s in ("train", "val", "test")] == [4, 1, 2]


def test_celeba_archive_errors(tmp_path):
    caps = {"train": 1, "val": 1, "test": 1}
    missing = tmp_path / "img_align_celeba.zip"
    with pytest.raises(DataError, match=r"img_align_celeba\.zip not found.*download"):
        celeba_collection(missing, caps)
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(RNG.integers(0, 256, 1000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match=r"corrupt\.zip is not a valid zip.*delete it"):
        celeba_collection(corrupt, caps)
    no_jpg = _write_zip(tmp_path / "nojpg.zip", {"readme.txt": b"hi", "a.png": _encode(_rgb())})
    with pytest.raises(DataError, match=r"no CelebA images.*000001\.jpg"):
        celeba_collection(no_jpg, caps)


def test_zip_images_opens_the_archive_once(tmp_path, monkeypatch):
    jpeg = _encode(_rgb(4, 4), "JPEG")
    names = [f"x/{i:06d}.jpg" for i in range(50)]
    archive = _write_zip(tmp_path / "many.zip", dict.fromkeys(names, jpeg))
    opened = []

    class Counting(zipfile.ZipFile):
        def __init__(self, *args, **kwargs):
            opened.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(image_archives.zipfile, "ZipFile", Counting)
    col = ZipImages(archive, {"train": names[:40], "val": names[40:45], "test": names[45:]}, colour=False)
    assert opened == []  # lazily: constructing opens nothing
    for name in names:
        assert col.read(name).shape == (4, 4)
    assert opened == [archive]
    clone = pickle.loads(pickle.dumps(col))  # a worker's copy opens its own handle
    assert clone.read(names[0]).shape == (4, 4) and len(opened) == 2
    col.close()
    with pytest.raises(DataError, match=r"many\.zip has no member 'x/none\.jpg'"):
        clone.read("x/none.jpg")


# ---- textures -------------------------------------------------------------------------------------------


def test_texture_images_match_decode_and_sort(tmp_path):
    pix = {n: RNG.integers(0, 256, (6, 5), dtype=np.uint8) for n in ("b.png", "a.png", "sub/c.png")}
    members = {n: _encode(p) for n, p in pix.items()} | {"readme.txt": b"x", "sub/": b""}
    archive = _write_zip(tmp_path / "grass.zip", members)
    out = texture_images(archive, "*.png", colour=False)
    assert len(out) == 3
    for img, name in zip(out, ["a.png", "b.png", "sub/c.png"]):
        np.testing.assert_array_equal(img * 255, pix[name])
    with pytest.raises(DataError, match=r"no member of archive .*grass\.zip matches '\*\.tif'.*readme\.txt"):
        texture_images(archive, "*.tif", colour=False)
