"""Tests for affsr.data.sources: the registry of image sources keeps what each entry declares.

Every embedded source is loaded for real (scikit-image ships the images: no network); the external ones are
checked to ask for their file instead of reaching for one.
"""

from __future__ import annotations

import numpy as np
import pytest

from affsr.data import sources
from affsr.config.data import SPLITS
from affsr.errors import DataError
from affsr.data.image_collections import ImageCollection
from affsr.data.sources import FACE_FRACTIONS, SOURCES, Source, SourceSpec

EMBEDDED = sorted(name for name, src in SOURCES.items() if src.input == "embedded")
EXTERNAL = sorted(name for name, src in SOURCES.items() if src.input != "embedded")

#: Shapes the descriptions promise, (H, W) grey or (H, W, 3) colour, in load order.
PATCH_SHAPES = {
    "skimage_grass": [(512, 512)],
    "skimage_gravel": [(512, 512)],
    "skimage_brick": [(512, 512)],
    "skimage_astronaut": [(512, 512, 3)],
    "skimage_photos": [(512, 512, 3), (300, 451, 3), (400, 600, 3), (427, 640, 3)],
}


def test_every_entry_declares_a_known_layout_input_and_description():
    assert EMBEDDED and EXTERNAL
    for name, src in SOURCES.items():
        assert isinstance(src, Source)
        assert src.layout in ("patches", "images"), name
        assert src.input in ("embedded", "download", "path"), name
        assert isinstance(src.colour, bool) and src.description.strip(), name
        assert callable(src.load), name
    # the study's external sources: CelebA and the Kylberg grass are downloaded, ImageNet is the user's folder
    assert {SOURCES[n].input for n in ("celeba", "kylberg_grass")} == {"download"}
    assert SOURCES["imagenet"].input == "path"


def test_every_embedded_patch_source_is_covered_here():
    assert sorted(PATCH_SHAPES) == sorted(n for n in EMBEDDED if SOURCES[n].layout == "patches")


@pytest.mark.parametrize("name", sorted(PATCH_SHAPES))
def test_embedded_patch_sources_give_the_documented_images(name):
    src = SOURCES[name]
    images = src.load(SourceSpec(), 0)
    assert [img.shape for img in images] == PATCH_SHAPES[name]
    for img in images:
        assert img.dtype == np.float64 and 0.0 <= img.min() and img.max() <= 1.0
        assert (img.ndim == 3) == src.colour  # the declared colour matches the pixels
        np.testing.assert_array_equal(np.rint(img * 255) / 255, img)  # exactly k/255: the bytes round-trip


def test_embedded_faces_are_a_collection_split_by_image():
    src = SOURCES["skimage_faces"]
    assert src.layout == "images" and not src.colour
    with src.load(SourceSpec(), 0) as faces:
        assert isinstance(faces, ImageCollection)
        assert set(faces.splits) == set(SPLITS)
        names = [n for s in SPLITS for n in faces.splits[s]]
        assert len(names) == len(set(names)) == 100  # the 100 faces, none in two splits
        assert {s: len(faces.splits[s]) for s in SPLITS} == {"train": 74, "val": 13, "test": 13}
        face = faces.read(faces.splits["test"][0])
        assert face.shape == (25, 25) and face.dtype == np.float64 and 0.0 <= face.min() and face.max() <= 1.0
    assert sum(FACE_FRACTIONS.values()) == pytest.approx(1.0)
    with src.load(SourceSpec(), 1) as other:  # the seed decides the split
        assert other.splits["test"] != faces.splits["test"]


@pytest.mark.parametrize("name", EXTERNAL)
def test_external_sources_ask_for_their_file(name):
    with pytest.raises(DataError, match="reads a downloaded file or a local folder, but no path was given"):
        SOURCES[name].load(SourceSpec(), 0)


def test_source_returns_the_entry_and_names_an_unknown_one():
    assert sources.source("skimage_grass") is SOURCES["skimage_grass"]
    with pytest.raises(DataError) as err:
        sources.source("skimage_gras")
    message = str(err.value)
    assert message.startswith("unknown data source 'skimage_gras'")
    assert all(name in message for name in SOURCES)  # the known names, to pick the right one
    assert "\n" not in message
