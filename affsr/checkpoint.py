"""Checkpoints: state dicts of tensors plus the run's settings as JSON, written atomically.

Loaded with ``torch.load(weights_only=True)``, so a checkpoint can never execute code (no pickled
objects), and a checkpoint carries its own configuration, so it is usable without params.yaml and a
mismatch with the current settings is detected instead of silently loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from affsr.files import atomic_write


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or from another configuration (names the file)."""


def save(path: Path, state: dict[str, Any], settings: dict) -> None:
    """Save ``state`` (nested dicts of tensors / numbers, e.g. state_dicts) and ``settings``."""
    payload = {"state": state, "settings_json": json.dumps(settings, sort_keys=True)}
    atomic_write(path, lambda handle: torch.save(payload, handle))


def load(path: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], dict]:
    """Return ``(state, settings)``; a missing or unreadable file is a one-line CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
        return payload["state"], json.loads(payload["settings_json"])
    except Exception as err:  # torch raises many types for truncated/corrupt files
        raise CheckpointError(f"{path}: not a readable affsr checkpoint ({type(err).__name__})") from None
