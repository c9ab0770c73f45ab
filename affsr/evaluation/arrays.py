"""Image batches as every metric takes them: (N, C, H, W) torch tensors or numpy arrays on the [0, 1] scale.

The metrics accept either kind (evaluation hands them tensors, notebooks often arrays) and convert here,
once, with the checks that turn a wrong shape into a one-line ValueError instead of a broadcast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ArrayLike = Any  # torch.Tensor | np.ndarray

#: Images per operator, pyramid or FFT call: bounds memory for 10⁴ paper-scale test images.
CHUNK = 256


def check_4d(name: str, a: Any) -> None:
    """ValueError unless ``a`` has four dimensions (N, C, H, W)."""
    if len(a.shape) != 4:
        raise ValueError(f"{name} must be (N, C, H, W), got shape {tuple(a.shape)}")


def as_float64_tensor(a: ArrayLike) -> torch.Tensor:
    """Detached float64 CPU tensor copy-or-view of a tensor / array."""
    if isinstance(a, torch.Tensor):
        return a.detach().to(device="cpu", dtype=torch.float64)
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def as_float64_array(a: ArrayLike) -> np.ndarray:
    """float64 numpy copy-or-view of a tensor / array."""
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().to(torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def as_batch(name: str, a: ArrayLike) -> torch.Tensor:
    """Detached CPU tensor (a view where possible, dtype kept), checked to be a non-empty (N, C, H, W) batch
    of floats."""
    t = a.detach().cpu() if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
    if t.ndim != 4:
        raise ValueError(f"{name} must be (N, C, H, W), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} has no images (N = 0)")
    if not t.is_floating_point():
        raise ValueError(f"{name} must hold floats on the [0, 1] scale, got dtype {t.dtype}")
    return t


def as_pair(outputs: ArrayLike, real: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Two batches (:func:`as_batch`) of one image size and channel count: a set of outputs and real images."""
    a, b = as_batch("outputs", outputs), as_batch("real", real)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"outputs images {tuple(a.shape[1:])} and real images {tuple(b.shape[1:])} differ in "
                         f"(C, H, W); compare images of one size and channel count")
    return a, b
