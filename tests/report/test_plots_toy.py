"""Tests for affsr.report.plots.toy: every method of the paper's toy has a fixed colour and its printed name.

(The figure itself is drawn from a real tiny toy study in test_toy.py.)"""

from __future__ import annotations

from affsr.report.display_names import display_name
from affsr.report.plots.toy import TOY_COLORS


#: The rows of the paper's Table 1 (§5.1): the brute-force MAP and the six trained methods.
PAPER_TOY = ("map", "mse", "mae", "affgan", "softgan", "affdg", "softdg")


def test_every_paper_toy_method_has_a_colour() -> None:
    assert set(TOY_COLORS) == set(PAPER_TOY)
    assert len(set(TOY_COLORS.values())) == len(TOY_COLORS)  # no two methods share a colour


def test_toy_legend_names_are_the_shared_display_names() -> None:
    """The legend's names, as the paper prints them (one table with the image study and the claims)."""
    shown = {m: display_name(m) for m in [*TOY_COLORS, "posterior_mean", "posterior_median"]}
    assert shown == {"map": "MAP", "mse": "MSE", "mae": "MAE", "affgan": "AffGAN", "softgan": "SoftGAN",
                     "affdg": "AffDG", "softdg": "SoftDG", "posterior_mean": "posterior mean",
                     "posterior_median": "posterior median"}
