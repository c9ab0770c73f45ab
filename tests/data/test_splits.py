"""Tests for affsr.data.splits: row bands of patch sources, random and fractional splits of image names."""

from __future__ import annotations

import pytest

from affsr.errors import DataError
from affsr.data.splits import band_ranges, check_counts, fraction_split, random_split

NAMES = [f"img{i:03d}" for i in range(100)]
COUNTS = {"train": 50, "val": 10, "test": 5}


def test_band_ranges_tile_the_image():
    for height in (512, 300, 427, 64, 71):
        b = band_ranges(height)
        assert b["train"][0] == 0 and b["test"][1] == height
        assert b["train"][1] == b["val"][0] and b["val"][1] == b["test"][0]
        assert all(r0 < r1 for r0, r1 in b.values())
    assert band_ranges(512) == {"train": (0, 384), "val": (384, 448), "test": (448, 512)}


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


def test_fraction_split_rejects_bad_fractions():
    with pytest.raises(DataError, match="need keys train, val, test"):
        fraction_split(NAMES, {"train": 0.9, "val": 0.1}, seed=0)
    with pytest.raises(DataError, match="must sum to 1"):
        fraction_split(NAMES, {"train": 0.5, "val": 0.1, "test": 0.1}, seed=0)


def test_repeated_names_are_an_error():
    with pytest.raises(DataError, match="repeat"):
        random_split(NAMES + NAMES[:1], COUNTS, seed=0)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_check_counts_names_the_bad_count(bad):
    with pytest.raises(DataError, match=r"caps\['val'\]=.* must be an integer ≥ 0"):
        check_counts("caps", {"train": 1, "val": bad, "test": 1}, optional=())
    check_counts("caps", {"train": None}, optional=("train", "val", "test"))  # missing / None: no cap
