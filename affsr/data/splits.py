"""How a source is divided into train / val / test so that no source pixel appears in two splits.

Patch sources (a few large images) are split by *region*: horizontal bands of every image
(:func:`band_ranges`), from which :mod:`affsr.data.patches` cuts random patches. Image collections are split by
*image*: a random re-split of the names (:func:`random_split`, ImageNet) or fractions of a small set
(:func:`fraction_split`, the embedded LFW faces); CelebA keeps its official partition
(:func:`affsr.data.archives.celeba_collection`). Every function here is deterministic in its ``seed`` and
raises :class:`affsr.errors.DataError` with a one-line message for a bad count or too few names.
"""

from __future__ import annotations

import numpy as np

from affsr.config.data import SPLITS
from affsr.errors import DataError

__all__ = ["BAND_FRACTIONS", "band_ranges", "random_split", "fraction_split", "check_counts"]

#: Fraction of each image's rows given to each split, top to bottom: train gets the top 75 %, val the next
#: 12.5 %, test the last 12.5 %. Bands (not random pixels or random patches) keep the splits spatially
#: disjoint, so overlapping random patches cannot leak texture from train into test.
BAND_FRACTIONS: dict[str, float] = {"train": 0.75, "val": 0.125, "test": 0.125}


def band_ranges(height: int) -> dict[str, tuple[int, int]]:
    """Half-open row ranges [start, stop) of the train / val / test bands of an image with ``height`` rows.

    train = [0, ⌊3H/4⌋), val = [⌊3H/4⌋, ⌊7H/8⌋), test = [⌊7H/8⌋, H); e.g. H = 512 → 0–384, 384–448, 448–512.
    The bands tile the image without overlap.
    """
    b1 = (3 * height) // 4
    b2 = (7 * height) // 8
    return {"train": (0, b1), "val": (b1, b2), "test": (b2, height)}


def check_counts(what: str, counts: dict[str, int | None], optional: tuple[str, ...]) -> None:
    """Each split's count must be an integer ≥ 0; those in ``optional`` may also be missing or None (no cap).

    ``what`` names the argument in the DataError (e.g. "caps" → "caps['val']=-1 must be an integer ≥ 0").
    """
    for s in SPLITS:
        v = counts.get(s)
        if v is None and s in optional:
            continue
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
            raise DataError(f"{what}[{s!r}]={v!r} must be an integer ≥ 0")


def _sorted_unique(names: list[str]) -> list[str]:
    """``names`` sorted, so the caller's order cannot change a split; duplicates are an error."""
    ordered = sorted(str(n) for n in names)
    if len(set(ordered)) != len(ordered):
        raise DataError(f"image names repeat ({len(ordered) - len(set(ordered))} duplicates); names must be unique")
    return ordered


def random_split(names: list[str], counts: dict[str, int | None], seed: int) -> dict[str, list[str]]:
    """Split ``names`` at random: val gets counts["val"], test counts["test"], train the rest (≤ counts["train"]).

    A permutation from ``numpy.random.default_rng(seed)`` of the *sorted* names decides: its first
    counts["val"] entries are val, the next counts["test"] test, the following ones train (all of them if
    counts["train"] is missing or None). So val and test do not change when the train cap changes, and a
    larger cap only appends to train. Each split keeps the permutation's (random, deterministic) order.
    Raises DataError if fewer than val + test + 1 names.
    """
    check_counts("counts", counts, optional=("train",))
    ordered = _sorted_unique(names)
    n_val, n_test = int(counts["val"]), int(counts["test"])
    if len(ordered) < n_val + n_test + 1:
        raise DataError(
            f"only {len(ordered)} images for val={n_val} + test={n_test} + at least 1 train; "
            f"lower the val/test counts or add images"
        )
    perm = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    return {
        "val": perm[:n_val],
        "test": perm[n_val : n_val + n_test],
        "train": perm[n_val + n_test :][: counts.get("train")],
    }


def fraction_split(names: list[str], fractions: dict[str, float], seed: int) -> dict[str, list[str]]:
    """Split a small set (e.g. 100 LFW faces) by fractions, e.g. train/val/test = 0.75/0.125/0.125.

    The sorted names are shuffled with ``numpy.random.default_rng(seed)``; val and test get round-half-up of
    their fraction × N but at least 1 each, train the rest (which must be ≥ 1). The splits are disjoint and
    cover every name. Raises DataError for fractions that are negative or do not sum to 1, or too few names.
    """
    if set(fractions) != set(SPLITS) or any(not 0.0 <= float(fractions[s]) <= 1.0 for s in SPLITS):
        raise DataError(f"fractions {fractions} need keys {', '.join(SPLITS)} with values in [0, 1]")
    if abs(sum(float(fractions[s]) for s in SPLITS) - 1.0) > 1e-6:
        raise DataError(f"fractions {fractions} sum to {sum(fractions.values())}; they must sum to 1")
    ordered = _sorted_unique(names)
    n = len(ordered)
    n_val, n_test = (max(1, int(np.floor(n * float(fractions[s]) + 0.5))) for s in ("val", "test"))
    if n - n_val - n_test < 1:
        raise DataError(f"only {n} images: too few for val={n_val}, test={n_test} and at least 1 train image")
    perm = [ordered[i] for i in np.random.default_rng(seed).permutation(n)]
    return {"train": perm[n_val + n_test :], "val": perm[:n_val], "test": perm[n_val : n_val + n_test]}
