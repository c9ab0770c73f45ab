"""The consistency `affsr upscale` promises, about the saved files: downsample(saved output), rounded to the
input's bit depth, equals the input.

Why an interval: an 8-bit LR image is A·y rounded to 1/255, and such an x need not be A of any image in
[0, 1] — the exact set {A y = x, 0 ≤ y ≤ 1} is often empty for 8-bit photos, and a solver then chases a
point that does not exist. The saved file only needs every LR row of A ŷ within half an input step q/2
of x; and the saved ŷ is itself rounded to the output's depth, which moves each row of A ŷ a little. So
the output is projected (:mod:`affsr.operators.local_projection`) onto

    C_δ = {0 ≤ y ≤ 1, |A y − x| ≤ δ},   δ = q_in/2 − q_out/4   (q = 1 / (2^bits − 1); 0 for float files),

which holds the true image whenever x was made by A (so it is never empty then), and is the exact set for
float inputs. q_out/4 leaves room for rounding ŷ (a row moves by the rounding errors of its 81 pixels,
weighted by the kernel: typically q_out/12, at most q_out/2). Then the saved ŷ is checked: rows that
rounding still pushed to q_in/2 or beyond get half their δ and are solved again, warm-started, until
none is left (:data:`ROUNDS`). Where C_δ is empty although the input was made by A — binary images,
whose truth sits on the corners of the box, leave no room for rounding — the widest set that holds the
truth (δ = q_in/2) is used, and rows that rounding then breaks are repaired on the integer image
(:mod:`affsr.upscaling.rounding`). Where the set is empty (an input not made by this A) the solver's proof is
reported, and the output is the solver's best point in [0, 1]. An output coarser than its input (a 16-bit
input written as an 8-bit PNG) can keep the round trip only at its own depth, and is projected for that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from affsr.operators.downsampling import Downsampling
from affsr.operators.local_projection import LocalProjection, lr_state, project_locally
from affsr.operators.row_bands import HRRows, bands, lr_errors, v_rows
from affsr.upscaling.disk import give_back_memory
from affsr.upscaling.files import file_values, quantise
from affsr.upscaling.rounding import repair_rounding

__all__ = ["Consistent", "make_consistent", "interval_half_width", "quantised", "ROUNDS", "TOL"]

#: At most this many solves with tightened δ for rows that rounding the output pushed out.
ROUNDS = 5
#: δ stays this fraction below half a step: a row exactly at q/2 rounds either way.
MARGIN = 1e-9
#: The step of a float32 output near 1 (.npy files): its rounding moves rows too, if very little.
FLOAT32_STEP = 2.0**-23
#: Solver tolerance (image units, 1 = white): ≤ 2.6e-5 grey levels of 255, far inside every interval.
TOL = 1e-7


@dataclass(frozen=True)
class Consistent:
    """The projection of every channel, written to the output's samples. projection: the solves' work and
    the last solve's state; delta: the starting half-width (image units; 0 = exact set); rounds: solves
    made; off: rows of the *saved* output still at or beyond half an input step (0 = the round trip is
    exact); empty: proven that no image in [0, 1] fits; float_error: max |A ŷ − x| of the float ŷ."""

    projection: LocalProjection
    delta: float
    rounds: int
    off: int
    empty: bool
    float_error: float


def interval_half_width(bits_in: int, bits_out: int) -> float:
    """δ = q_in/2 · (1 − MARGIN) − q_out/4 for an integer input no finer than the output (module
    docstring), 0 for float inputs (bits 32). A finer input than the output is the caller's to coarsen:
    rounding the output to its depth moves rows by more than the input's step."""
    if bits_in >= 32:
        return 0.0
    if bits_out < bits_in:
        raise ValueError(f"a {bits_in}-bit input cannot round-trip through a {bits_out}-bit output")
    q_in = 1.0 / (2.0**bits_in - 1)
    q_out = FLOAT32_STEP if bits_out >= 32 else 1.0 / (2.0**bits_out - 1)
    return q_in / 2 * (1 - MARGIN) - q_out / 4


def quantised(bits: int):
    """v (tensor, any shape) → what a file of ``bits`` gives back for clamp(v, 0, 1) (float32 for 32)."""
    if bits >= 32:
        return lambda v: v.clamp(0.0, 1.0).float().double()
    top = 2.0**bits - 1
    return lambda v: torch.round(v.clamp(0.0, 1.0) * top) / top


def make_consistent(op: Downsampling, f: HRRows, u: Tensor | None, lr: np.ndarray, bits_in: int, bits_out: int,
                    out, raw=None, progress: bool = False) -> Consistent:
    """Project y0 = f + Aᵀu onto C_δ for the LR input ``lr`` (C, h, w) read at ``bits_in`` and an output
    written at ``bits_out`` (32: float), tightening δ where rounding the output breaks a row, and write
    each channel's samples into ``out`` (a DiskImage of the file's dtype, planes ≥ C) and its float
    values into ``raw`` (float32, or None). f: (C, H, W) read by rows; u: (C, h, w) or None. One channel
    at a time (they are independent problems), so the solver's state is a channel's LR grid."""
    if bits_out < bits_in:  # a coarser output can only keep the round trip at its own depth: around x rounded
        bits_in, lr = bits_out, quantise(lr, bits_out)
    delta0 = interval_half_width(bits_in, bits_out)
    half_step = 0.5 / (2.0**bits_in - 1) if bits_in < 32 else None
    saved = quantised(bits_out)
    results, finals, rounds, off, float_error = [], [], 0, 0, 0.0  # every solve, and each channel's last good one
    for c in range(len(lr)):
        fc, uc = f.channel(c), None if u is None else u[c:c + 1]
        x = torch.from_numpy(np.ascontiguousarray(lr[c:c + 1], dtype=np.float64))
        delta, lam, best, widened = torch.full_like(x, delta0), None, None, False
        for round_ in range(1, ROUNDS + 1):
            result = project_locally(op, fc, x, delta, u=uc, lam=lam, tol=TOL, progress=progress)
            results.append(result)
            if result.empty:
                if best is None and half_step is not None and float(delta.max()) < half_step * (1 - MARGIN):
                    # no room for rounding the output (binary images: the truth sits on the box's corners):
                    # the widest set that holds the truth, and the rounding repaired after
                    delta, lam, widened = torch.full_like(x, half_step * (1 - MARGIN)), None, True
                    continue
                break  # a tightened set is empty: keep the last solve, the repair below does the rest
            best, lam = result, result.lam
            if half_step is None or widened:  # no room to tighten into: the repair takes the rounding
                break
            # rows the *saved* file breaks: at or beyond half an input step once rounded to the output's depth
            broken = lr_errors(op, fc, lr_state(uc, lam), x, saved).abs() >= half_step * (1 - MARGIN)
            if not broken.any():
                break
            delta = torch.where(broken, delta / 2, delta)
        final = best or result
        z = lr_state(uc, final.lam)
        for first, end in bands(x.shape[-2]):  # the channel's samples, a band of rows at a time
            y = v_rows(op, fc, z, np.arange(first, end)).clamp(0.0, 1.0).numpy()
            out.channel(c).write(op.scale * first, file_values(y, bits_out))
            if raw is not None:
                raw.channel(c).write(op.scale * first, y)
        float_error = max(float_error, float(lr_errors(op, fc, z, x, lambda v: v.clamp(0.0, 1.0)).abs().max()))
        if half_step is not None and bits_out < 32 and not final.empty:
            errors = lr_errors(op, out.channel(c), None, x, lambda v: v / (2.0**bits_out - 1))[0].numpy()
            if (np.abs(errors) >= half_step * (1 - MARGIN)).any():
                with out.plane(c) as levels:
                    off += repair_rounding(op, levels, errors, bits_out, half_step * (1 - MARGIN))
        finals.append(final)
        rounds = max(rounds, round_)
        give_back_memory()
    return Consistent(_merged(results, finals), delta0, rounds, off, any(r.empty for r in finals), float_error)


def _merged(results: list[LocalProjection], finals: list[LocalProjection]) -> LocalProjection:
    """All solves as one: the work of every solve added up; the state (violation, convergence, emptiness)
    of each channel's last solve."""
    first = finals[0]
    return LocalProjection(None, first.lam, max(r.residual for r in finals),
                           all(r.converged for r in finals), any(r.empty for r in finals),
                           sum(r.windows for r in results), sum(r.rounds for r in results),
                           sum(r.newton for r in results), sum(r.cg_steps for r in results),
                           sum(r.clipped_before for r in finals), sum(r.seconds for r in results), first.tol)
