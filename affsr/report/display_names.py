"""How methods are named in tables and figures: one table for the image study, the toy and the claims.

A method without an entry is shown under its params.yaml name, so a new method needs no edit here.
"""

from __future__ import annotations

#: params.yaml method name (or a reference / ground-truth row) → printed name.
DISPLAY_NAMES: dict[str, str] = {
    "map": "MAP", "mse": "MSE", "mae": "MAE", "affmse": "AffMSE", "affinit": "AffInit", "affgan": "AffGAN",
    "softgan": "SoftGAN", "affgan_z": "AffGAN-z", "affdg": "AffDG", "softdg": "SoftDG", "affll": "AffLL",
    "posterior_mean": "posterior mean", "posterior_median": "posterior median", "pinv": "A⁺x",
    "bicubic": "bicubic", "hr": "real HR",
}


def display_name(method: str) -> str:
    """The printed name of ``method`` (its params.yaml name where none is given)."""
    return DISPLAY_NAMES.get(method, method)
