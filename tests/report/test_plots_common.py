"""Tests for affsr.report.plots.common: atomic PNG writing and the theme that leaves no global state behind."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
from png_checks import no_temp_files, read_png

from affsr.report.plots.common import ordered_unique, save_atomic, style


def _figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [1, 0])
    return fig


def test_save_atomic_overwrites_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "figure.png"
    out.write_bytes(b"old")
    fig = _figure()
    try:
        save_atomic(fig, out)
    finally:
        plt.close(fig)
    read_png(out)
    no_temp_files(tmp_path)
    # normal file permissions, not the 0600 a bare mkstemp would leave
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_atomic_creates_parent_folders(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "figure.png"
    fig = _figure()
    try:
        save_atomic(fig, out)
    finally:
        plt.close(fig)
    read_png(out)


def test_style_leaves_rcparams_as_they_were() -> None:
    before = dict(mpl.rcParams)
    with style("white"):
        assert mpl.rcParams["axes.grid"] is False
    with style("whitegrid"):
        assert mpl.rcParams["axes.grid"] is True
    assert dict(mpl.rcParams) == before


def test_ordered_unique_keeps_first_appearance() -> None:
    assert ordered_unique(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
