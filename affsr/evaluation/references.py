"""The reference upsamplers evaluated beside the methods: bicubic on A's grid and A⁺x."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from affsr.config.study import REFERENCES
from affsr.evaluation.arrays import ArrayLike, as_float64_tensor, check_4d
from affsr.operators.interpolation import cubic_upsample, grid_offset


def bicubic(lr: ArrayLike, scale: int, offset: float | tuple[float, float] = 0.0) -> torch.Tensor:
    """Bicubic upsampling reference on A's grid: (N, C, h, w) → (N, C, h·s, w·s), not clipped.

    LR pixel i sits on HR pixel s·i + offset (rows, columns; a pair for different offsets), which for the
    centred Gaussian A of this study is s·i itself (offset 0): HR pixel j is sampled at LR coordinate
    u = j/s with Keys' cubic convolution, a = −0.75 (PyTorch's and OpenCV's choice; MATLAB's imresize uses
    −0.5), from the 4 LR pixels floor(u) − 1 … floor(u) + 2, wrapping around circularly like A. At j = s·i
    it returns x_i exactly. (F.interpolate(align_corners=False) instead assumes offset (s − 1)/2, the grid of
    a box filter, 1.5 HR px off for s = 4; that is what :func:`reference_outputs` passes for the box A.)
    May overshoot [0, 1] near edges. Keeps a float input's dtype (float64 in → float64 out); integer input
    becomes float32.
    """
    x = lr if isinstance(lr, torch.Tensor) else torch.from_numpy(np.asarray(lr))
    check_4d("lr", x)
    if not x.is_floating_point():
        x = x.to(torch.float32)
    oy, ox = (offset, offset) if np.isscalar(offset) else offset
    with torch.no_grad():
        return cubic_upsample(x.detach(), int(scale), (float(oy), float(ox)), boundary="circular")


def reference_outputs(name: str, lr: ArrayLike, op: Any) -> torch.Tensor:
    """A non-learned SR output for the LR batch: "bicubic" (bicubic upsampling by op.scale on A's sampling
    grid, see :func:`bicubic`) or "pinv" (A⁺x).

    Returned as float64 (N, C, H, W): computed in float64 so that A⁺x's consistency error reflects the
    operator, not float32 round-off.
    """
    if name not in REFERENCES:
        raise ValueError(f"unknown reference output {name!r}; allowed names: {', '.join(REFERENCES)}")
    x = as_float64_tensor(lr)
    check_4d("lr", x)
    if name == "bicubic":
        return bicubic(x, int(op.scale), offset=grid_offset(op))
    with torch.no_grad():
        return op.pinv(x)
