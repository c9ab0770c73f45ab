"""Checkpoints: state dicts of tensors plus the run's settings as JSON, written atomically; and the
trained networks rebuilt from them.

Loaded with ``torch.load(weights_only=True)``, so a checkpoint can never execute code (no pickled
objects), and a checkpoint carries its own configuration, so it is usable without params.yaml and a
mismatch with the data, the method name or the run it should guide is detected instead of silently
loaded. Loading lives here, apart from the training loop: evaluation and ``upscale`` need no loop.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from affsr.atomic_files import atomic_write
from affsr.config.study import RunSettings
from affsr.errors import CheckpointError, ConfigError
from affsr.methods import guided_by
from affsr.methods.base import Guide
from affsr.nets.sr_model import SRModel
from affsr.operators.downsampling import Downsampling
from affsr.operators.kinds import build_operator
from affsr.training.build import build_network, guides_from_snapshots

__all__ = ["CheckpointError", "digest", "save", "load", "load_network", "load_model", "load_guides", "check_data_matches"]


def digest(state: Any, settings_json: str) -> str:
    """SHA-256 (hex) of a checkpoint's content: every tensor's place in the nested state, dtype, shape and
    bytes, every other value's repr, and the settings. Stored beside the state, so bytes flipped inside
    the tensor data (which ``torch.load`` reads without complaint) are caught when the file is loaded."""
    sha = hashlib.sha256(settings_json.encode())

    def walk(value: Any, place: str) -> None:
        if isinstance(value, torch.Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            sha.update(f"{place}:{value.dtype}:{tuple(value.shape)}:".encode())
            sha.update(flat.view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                walk(value[key], f"{place}/{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{place}[{i}]")
        else:
            sha.update(f"{place}={value!r};".encode())

    walk(state, "")
    return sha.hexdigest()


def save(path: Path, state: dict[str, Any], settings: dict) -> None:
    """Save ``state`` (nested dicts of tensors / numbers, e.g. state_dicts) and ``settings``, with their
    :func:`digest`."""
    settings_json = json.dumps(settings, sort_keys=True)
    payload = {"state": state, "settings_json": settings_json, "digest": digest(state, settings_json)}
    atomic_write(path, lambda handle: torch.save(payload, handle))


def load(path: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], dict]:
    """Return ``(state, settings)``; a missing, unreadable or altered file (its content no longer matches
    the digest it carries) is a one-line CheckpointError. Checkpoints written before digests existed load
    unverified."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
        state, settings_json = payload["state"], payload["settings_json"]
        settings = json.loads(settings_json)
    except Exception as err:  # torch raises many types for truncated/corrupt files
        raise CheckpointError(f"{path}: not a readable affsr checkpoint ({type(err).__name__})") from None
    if "digest" in payload and payload["digest"] != digest(state, settings_json):
        raise CheckpointError(f"{path}: its content does not match the digest it carries (the file is corrupt "
                              "or was edited); restore it or train the run again")
    return state, settings


def run_settings(path: Path, stored: dict) -> RunSettings:
    """The run settings a checkpoint carries (without the ``data`` it records)."""
    try:
        return RunSettings.parse({k: v for k, v in stored.items() if k != "data"})
    except ConfigError as err:
        raise CheckpointError(f"{path}: its settings are not an affsr run's ({err})") from None


def load_network(checkpoint_path: Path, name: str, device: torch.device | str = "cpu"):
    """Network ``name`` of a finished run (eval mode, frozen), rebuilt from the settings it carries:
    e.g. the held-out density model used for evaluation. Returns (network, settings)."""
    state, stored = load(checkpoint_path)
    settings = run_settings(checkpoint_path, stored)
    try:
        network = build_network(settings, int(state["channels"]), name)
        network.load_state_dict(state["networks"][name])
    except (ConfigError, KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"{checkpoint_path}: settings or weights do not fit a usable '{name}' network ({err})"
        ) from None
    broken = [k for k, v in network.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:  # a run that diverged, saved as is: its outputs would be NaN everywhere
        raise CheckpointError(f"{checkpoint_path}: network '{name}' has non-finite weights (NaN or inf in "
                              f"{', '.join(broken[:3])}{' …' if len(broken) > 3 else ''}); train the run again")
    return network.to(device).eval().requires_grad_(False), settings


def load_model(checkpoint_path: Path, device: torch.device | str = "cpu") -> tuple[SRModel, RunSettings]:
    """The trained SR model of a checkpoint (eval mode), rebuilt from the settings it carries."""
    return load_network(checkpoint_path, "generator", device)


def load_guides(checkpoint_path: Path, settings: RunSettings, channels: int) -> list[Guide]:
    """The snapshots of an auxiliary run (denoiser or density model), frozen, in curriculum order. The
    run must be of the objective ``settings`` needs and of the same image channels."""
    state, stored = load(checkpoint_path)
    aux = run_settings(checkpoint_path, stored)
    expected = guided_by(settings.objective)
    if aux.objective != expected:
        raise CheckpointError(
            f"{checkpoint_path}: a '{aux.objective}' run cannot guide objective '{settings.objective}', "
            f"which needs a '{expected or 'no'}' run"
        )
    if int(state.get("channels", -1)) != channels:
        raise CheckpointError(f"{checkpoint_path}: trained on {state.get('channels')}-channel images, but this "
                              f"run's data have {channels} channels; guide it with a run on the same data set")
    snapshots = state.get("snapshots") or []
    if not snapshots:
        raise CheckpointError(f"{checkpoint_path}: holds no snapshots to guide training with")
    try:
        (name,) = snapshots[0]["networks"]  # an auxiliary run trains one network: its snapshots hold it
        return guides_from_snapshots(snapshots, name, lambda: build_network(aux, channels, name))
    except (KeyError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"{checkpoint_path}: snapshots do not fit its '{name}' network ({err})") from None


def check_data_matches(settings: RunSettings, data_dir: Path, manifest: dict, what: str = "the run",
                       op: Downsampling | None = None) -> None:
    """The data (``manifest``, from ``data_dir``) must be the data set the run names and have been made
    with the operator it assumes (``op``: the run's A, built from its settings when not given), or its
    results are mislabelled and consistency is meaningless."""
    dataset = manifest.get("dataset", settings.dataset)  # recorded by `affsr prepare --dataset`
    if dataset != settings.dataset:
        raise ConfigError(f"{data_dir}: holds data set '{dataset}', but {what} is for data set "
                          f"'{settings.dataset}'; pass --data data/{settings.dataset} (or the matching --dataset)")
    expected = (op if op is not None else build_operator(settings.operator)).describe()
    if manifest.get("operator") != expected:
        raise ConfigError(
            f"{data_dir}/manifest.json: data were made with operator {manifest.get('operator')}, "
            f"but {what} uses {expected}; re-run `affsr prepare` with the same operator settings"
        )
