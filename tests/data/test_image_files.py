"""Tests for affsr.data.image_files: decoding one image file and cropping / resizing it to an HR image."""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from affsr.errors import DataError
from affsr.data.image_files import crop_resize, decode_image

from image_bytes import RNG
from image_bytes import encode as _encode
from image_bytes import random_rgb as _rgb


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

