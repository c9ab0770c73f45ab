"""Tests for affsr.images: decoding, crop / resize, splits, and the CelebA / ImageNet / texture collections.

Every collection test builds real files (PNG / JPEG via Pillow, zip archives via zipfile) under tmp_path.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affsr import images
from affsr.data import DataError
from affsr.images import (
    ArrayImages,
    ZipImages,
    celeba_collection,
    crop_resize,
    decode_image,
    fraction_split,
    imagenet_collection,
    random_split,
    texture_images,
)

RNG = np.random.default_rng(0)


def _encode(pixels: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    img = Image.fromarray(pixels)
    if mode is not None:
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _rgb(h: int = 8, w: int = 8) -> np.ndarray:
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# ---- decode_image ---------------------------------------------------------------------------------------


def test_decode_rgb_png_round_trip_is_exact():
    px = _rgb(5, 7)
    y = decode_image(_encode(px), "a.png", colour=True)
    assert y.dtype == np.float64 and y.shape == (5, 7, 3)
    np.testing.assert_array_equal(y * 255.0, px.astype(np.float64))  # values are exactly k/255


def test_decode_grey_request_on_colour_image_gives_luma():
    px = _rgb(6, 4)
    y = decode_image(_encode(px), "a.png", colour=False)
    assert y.shape == (6, 4)
    np.testing.assert_array_equal(np.rint(y * 255), np.asarray(Image.fromarray(px).convert("L")))


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK"])
def test_decode_converts_other_modes_to_rgb(mode):
    px = _rgb(6, 6)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    y = decode_image(_encode(px, fmt, mode), f"a.{fmt}", colour=True)
    assert y.shape == (6, 6, 3) and 0.0 <= y.min() and y.max() <= 1.0
    if mode == "RGBA":  # alpha dropped, colours untouched
        np.testing.assert_array_equal(np.rint(y * 255), px)
    if mode == "L":  # grey expanded to three equal channels
        assert np.array_equal(y[..., 0], y[..., 1]) and np.array_equal(y[..., 0], y[..., 2])


def test_decode_sixteen_bit_grey_is_scaled_not_clipped():
    px = np.array([[0, 1000], [30000, 65535]], dtype=np.uint16)
    y = decode_image(_encode(px), "deep.png", colour=False)
    np.testing.assert_allclose(y, px / 65535.0)


@pytest.mark.parametrize("kind", ["truncated", "random"])
def test_decode_corrupt_data_names_the_file(kind):
    jpeg = _encode(_rgb(32, 32), "JPEG")
    data = jpeg[: len(jpeg) // 2] if kind == "truncated" else RNG.integers(0, 256, 500, dtype=np.uint8).tobytes()
    with pytest.raises(DataError, match=r"bad/000042\.jpg is corrupt or truncated.*delete or replace"):
        decode_image(data, "bad/000042.jpg", colour=True)


# ---- crop_resize ----------------------------------------------------------------------------------------


def _coords(h: int, w: int) -> np.ndarray:
    """Colour image whose channel 0 is the row, channel 1 the column (in units of 1/255)."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([rows, cols, np.zeros_like(rows)], axis=2) / 255.0


def test_crop_largest_centred_square_picks_the_centre():
    out = crop_resize(_coords(6, 10), 6)
    assert out.dtype == np.uint8 and out.shape == (3, 6, 6)
    np.testing.assert_array_equal(out[0, :, 0], np.arange(6))  # all rows
    np.testing.assert_array_equal(out[1, 0, :], np.arange(2, 8))  # columns 2–7: margins of 2 either side
    tall = crop_resize(_coords(10, 6), 6)
    np.testing.assert_array_equal(tall[0, :, 0], np.arange(2, 8))


def test_crop_centred_size_and_exact_box():
    centred = crop_resize(_coords(6, 10), 4, (4,))
    np.testing.assert_array_equal(centred[0, :, 0], np.arange(1, 5))
    np.testing.assert_array_equal(centred[1, 0, :], np.arange(3, 7))
    box = crop_resize(_coords(20, 30), 5, (7, 11, 5))
    np.testing.assert_array_equal(box[0], np.arange(7, 12)[:, None].repeat(5, axis=1))
    np.testing.assert_array_equal(box[1], np.arange(11, 16)[None, :].repeat(5, axis=0))


def test_crop_without_resize_is_bitwise_the_crop():
    img = RNG.random((12, 14))
    out = crop_resize(img, 8, (2, 3, 8))
    assert out.shape == (1, 8, 8) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], np.rint(img[2:10, 3:11] * 255).astype(np.uint8))


@pytest.mark.parametrize("factor", [2, 3])
def test_integer_downscale_is_rounded_block_mean(factor):
    u8 = RNG.integers(0, 256, size=(8 * factor, 8 * factor, 3)).astype(np.float64)
    out = crop_resize(u8 / 255.0, 8)
    blocks = u8.reshape(8, factor, 8, factor, 3).mean(axis=(1, 3)).transpose(2, 0, 1)
    assert out.shape == (3, 8, 8)
    np.testing.assert_array_equal(out, np.rint(blocks))  # one rounding, so no brightness bias
    assert abs(out.mean() - blocks.mean()) < 0.1


def test_non_integer_downscale_keeps_constant_images_and_shape():
    out = crop_resize(np.full((15, 15), 0.4), 8)
    assert out.shape == (1, 8, 8)
    np.testing.assert_array_equal(out, np.full((1, 8, 8), round(0.4 * 255), dtype=np.uint8))
    up = crop_resize(np.full((4, 4, 3), 0.4), 8)  # upscaling also works (BICUBIC)
    np.testing.assert_array_equal(up, np.full((3, 8, 8), round(0.4 * 255), dtype=np.uint8))


@pytest.mark.parametrize("crop", [(0, 0, 7), (3, 0, 4), (0, -1, 4), (11,), (1, 2)])
def test_crop_outside_the_image_is_a_data_error(crop):
    with pytest.raises(DataError, match=r"6×10|crop"):
        crop_resize(RNG.random((6, 10)), 4, crop)


# ---- splits ---------------------------------------------------------------------------------------------

NAMES = [f"img{i:03d}" for i in range(100)]
COUNTS = {"train": 50, "val": 10, "test": 5}


def test_random_split_counts_disjoint_deterministic():
    a = random_split(NAMES, COUNTS, seed=1)
    assert {s: len(v) for s, v in a.items()} == {"train": 50, "val": 10, "test": 5}
    assert len(set(a["train"]) | set(a["val"]) | set(a["test"])) == 65
    assert a == random_split(NAMES, COUNTS, seed=1)
    assert a != random_split(NAMES, COUNTS, seed=2)
    assert a == random_split(list(reversed(NAMES)), COUNTS, seed=1)  # input order does not matter


def test_random_split_cap_only_changes_train():
    full = random_split(NAMES, {**COUNTS, "train": 10**6}, seed=0)
    capped = random_split(NAMES, COUNTS, seed=0)
    assert len(full["train"]) == 85 and full["train"][:50] == capped["train"]
    assert full["val"] == capped["val"] and full["test"] == capped["test"]


def test_random_split_without_train_cap_takes_the_rest():
    assert len(random_split(NAMES, {"val": 10, "test": 5}, seed=0)["train"]) == 85
    with pytest.raises(DataError, match=r"counts\['val'\]=None"):
        random_split(NAMES, {"train": 5, "test": 5}, seed=0)


def test_random_split_too_few_names():
    with pytest.raises(DataError, match=r"only 15 images for val=10 \+ test=5"):
        random_split(NAMES[:15], COUNTS, seed=0)


def test_fraction_split_covers_everything_disjointly():
    for n in (3, 7, 100):
        s = fraction_split(NAMES[:n], {"train": 0.75, "val": 0.125, "test": 0.125}, seed=0)
        assert all(len(v) >= 1 for v in s.values())
        assert sorted(s["train"] + s["val"] + s["test"]) == NAMES[:n]
    assert fraction_split(NAMES, {"train": 0.75, "val": 0.125, "test": 0.125}, seed=0)["val"].__len__() == 13
    with pytest.raises(DataError):
        fraction_split(NAMES[:2], {"train": 0.75, "val": 0.125, "test": 0.125}, seed=0)


def test_array_images_reads_by_index_and_rejects_overlap():
    faces = [np.full((25, 25), i / 10) for i in range(4)]
    col = ArrayImages(faces, {"train": ["0", "1"], "val": ["2"], "test": ["3"]})
    assert col.read("2")[0, 0] == pytest.approx(0.2)
    with pytest.raises(DataError, match="disjoint"):
        ArrayImages(faces, {"train": ["0", "1"], "val": ["1"], "test": ["3"]})


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

    monkeypatch.setattr(images.zipfile, "ZipFile", Counting)
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
