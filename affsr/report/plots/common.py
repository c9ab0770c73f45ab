"""What every figure shares: the seaborn theme, the resolution, and atomic PNG writing.

Each figure is written as a PNG *atomically* (temp file in the same folder, then ``os.replace``, via
:func:`affsr.atomic_files.atomic_write`), creating parent folders as needed, so a killed job never leaves a
half-drawn file that looks finished. Seaborn styling is applied through a context manager, so importing
the plots does not change global rcParams.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import seaborn as sns
from matplotlib.figure import Figure

from affsr.atomic_files import atomic_write

__all__ = ["DPI", "save_atomic", "style", "ordered_unique"]

#: Resolution of every PNG (dots per inch).
DPI = 150


def save_atomic(fig: Figure, path: Path | str) -> None:
    """Write ``fig`` to ``path`` as PNG, atomically."""
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=DPI, bbox_inches="tight",
                                                  facecolor="white"))


@contextmanager
def style(name: str = "whitegrid") -> Iterator[None]:
    """Seaborn theme ``name`` ("white", "whitegrid") for the duration of one figure (no global side effects)."""
    with sns.axes_style(name), sns.plotting_context("notebook", font_scale=0.9):
        yield


def ordered_unique(values: Sequence[object]) -> list:
    """``values`` without repeats, in order of first appearance (the order of bars, panels and colours)."""
    return list(dict.fromkeys(values))
