"""Projection onto C_δ = {y : |A y − x| ≤ δ, 0 ≤ y ≤ 1} for a whole photo, solving only where it is needed.

Why local: A's support is a few HR pixels (9×9 for the paper's operator), the affine projection
y0 = A⁺x + (I − A⁺A) f already satisfies A y0 = x, and clamping y0 to [0, 1] only disturbs the LR rows
that see a clamped pixel (1.4 % of the rows of a 1024² photo output, by more than half a grey level).
Every other row is satisfied with multiplier λ = 0, so its pixels keep clamp(y0). The global solver of
:mod:`affsr.operators.box_projection` nevertheless ran every CG step over the whole image (retina 1024²
colour: 250 s, not converged).

Method: block coordinate descent on the dual of :mod:`affsr.operators.interval_projection`. A global λ
(C, h, w), zero at first, and v = y0 + Aᵀλ (the image before clamping) are kept. Each round finds the
LR rows that break the optimality conditions (outside their interval, or held at an end without lying
on it) and re-solves λ on every :data:`TILE` × :data:`TILE` tile of rows that holds one, everything else
fixed: a window is the tile plus a margin of one or two LR rows that are not constrained, so that the
tile's kernels never wrap around the window, and the window's share of v is updated exactly
(v_window = base + Aᵀλ_tile, all inside the window). Tiles of one colour (a 2 × 2 checkerboard, a third
colour where the periodic edge needs one) share no pixel and are solved as one batch; the next colour
then starts from their result. Alternate rounds shift the tiling by half a tile, so that rows on a tile
border are solved together with both neighbours. Rounds repeat until no row breaks the conditions (the
exact projection, to ``tol``), a window proves the set empty, or ``max_rounds`` pass.

Measured on the 256² → 1024² astronaut case (one photo's 3 channels, 8-bit): one global solve 78 s and
not converged in 80 Newton steps; tiles 3.2 s, converged (docs/benchmarks.md, "Upscale at photo size").

A boundary other than circular (``reflect``) couples the border rows differently; there the one window
is the whole image. Channels are independent problems and are solved as one batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from affsr.operators.downsampling import Downsampling
from affsr.operators.interval_projection import EPSILON, solve_interval
from affsr.operators.polyphase import fast_operator, squares_operator

__all__ = ["LocalProjection", "project_locally", "TILE"]

#: LR pixels per side of a tile: the rows one window constrains (its margins add one or two per side).
TILE = 16


@dataclass(frozen=True)
class LocalProjection:
    """Result of :func:`project_locally`. image: (C, H, W) float64 in [0, 1]; lam: (C, h, w) the dual (a
    warm start for a re-solve with other δ); residual: the largest optimality violation of any row (1 =
    white; ≤ tol when converged); empty: a window proved C_δ empty; windows, rounds, newton, cg_steps:
    the work done; clipped_before: pixels of y0 outside [0, 1]; seconds: wall time."""

    image: Tensor
    lam: Tensor
    residual: float
    converged: bool
    empty: bool
    windows: int
    rounds: int
    newton: int
    cg_steps: int
    clipped_before: int
    seconds: float
    tol: float

    def summary(self) -> str:
        state = ("converged" if self.converged else "the set is EMPTY (proven)" if self.empty
                 else f"NOT converged to tol {self.tol:g}")
        return (f"projection {state}: {self.windows} windows in {self.rounds} rounds ({self.newton} Newton, "
                f"{self.cg_steps} CG steps, {self.seconds:.2f} s), largest row violation {self.residual:.1e}")


def _margins(op: Downsampling, axis: int) -> tuple[int, int]:
    """LR rows (before, after) a constrained row needs inside its window so that its kernel does not wrap."""
    s, k, o = op.scale, op.kernel_shape[axis], op.origin[axis]
    return math.ceil(o / s), max(0, math.ceil((k - o - s) / s))


def _violation(op: Downsampling, v: Tensor, lam: Tensor, x: Tensor, delta: Tensor) -> Tensor:
    """Per row (C, h, w): how far it is from the optimality conditions of the exact (ε → 0) problem. A row
    with λ ≈ 0 (|λ| ≤ εδ) must lie in its interval; a row held at an end must lie on that end."""
    gap = op(v.clamp(0.0, 1.0)[:, None])[:, 0] - x
    held = lam.abs() > EPSILON * delta
    outside = (gap.abs() - delta).clamp(min=0.0)
    return torch.where(held, (gap + delta * lam.sign()).abs(), outside)


def _tiles(n: int, tile: int, before: int, after: int, shift: int = 0) -> tuple[list[np.ndarray], np.ndarray, list[int]]:
    """Along one axis of n LR rows: each tile's window indices (its rows plus margins, modulo n: the axis is
    periodic), which window positions are constrained (the tile's own rows), and each tile's colour: 0/1
    alternating, 2 for the last when the count is odd (it touches the first across the periodic edge) or
    the tiles do not divide n (it overlaps the one before). Windows of one colour never overlap, since a
    tile is longer than its two margins, so they are solved as one batch. Tiles start at ``shift``; one tile covers the whole axis when it is not longer than a tile and its margins."""
    if n <= tile + before + after:
        return [np.arange(n)], np.ones(n, dtype=bool), [0]
    starts = [shift + k * tile for k in range(n // tile)] + ([shift + n - tile] if n % tile else [])
    constrained = np.zeros(before + tile + after, dtype=bool)
    constrained[before:before + tile] = True
    windows = [np.arange(start - before, start + tile + after) % n for start in starts]
    colours = [i % 2 for i in range(len(starts))]
    if len(starts) % 2 or n % tile:  # the last tile touches the first, or overlaps the one before it
        colours[-1] = 2
    return windows, constrained, colours


def project_locally(op: Downsampling, y0: Tensor, x: Tensor, delta: Tensor, lam: Tensor | None = None,
                    tol: float = 1e-9, tile: int = TILE, max_rounds: int = 12, max_iter: int = 80,
                    progress: bool = False) -> LocalProjection:
    """Nearest point of C_δ to y0 for one image (module docstring).

    y0: (C, H, W); x and delta: (C, h, w), delta ≥ 0 (0: the exact set); lam: a previous result's λ to
    start from. Float64 on y0's device. ``progress``: a progress bar (stderr) over the tiles solved, for
    runs longer than two seconds."""
    from tqdm import tqdm

    start = time.perf_counter()
    boundary, op = op.boundary, fast_operator(op)
    squares = squares_operator(op)
    y0, x = y0.detach().double(), x.detach().double()
    delta = delta.double().expand_as(x).contiguous()
    lam = torch.zeros_like(x) if lam is None else lam.double().clone()
    v = y0 + (op.adjoint(lam[:, None])[:, 0] if bool(lam.any()) else 0.0)
    s, (channels, h, w) = op.scale, x.shape
    grids = []  # the tiling of even rounds, and of odd rounds shifted by half a tile (rows on a tile border
    for shift in (0, tile // 2):  # get solved with both neighbours' rows in one window)
        if boundary != "circular":  # one window, the whole image (module docstring)
            grid = (([np.arange(h)], np.ones(h, dtype=bool), [0]), ([np.arange(w)], np.ones(w, dtype=bool), [0]))
        else:
            grid = (_tiles(h, tile, *_margins(op, 0), shift), _tiles(w, tile, *_margins(op, 1), shift))
        grids.append(grid)
    solved = newton = cg_steps = rounds = 0
    empty = False
    bar = tqdm(desc="projection", unit="tile", delay=2.0, disable=not progress, leave=False)
    residual = _violation(op, v, lam, x, delta).amax(0).cpu().numpy()
    for rounds in range(1, max_rounds + 1):
        if not (residual > tol).any():
            rounds -= 1
            break
        bad = residual > tol
        (row_tiles, row_mask, row_colours), (col_tiles, col_mask, col_colours) = grids[(rounds - 1) % 2]
        mask = torch.from_numpy(row_mask[:, None] & col_mask[None, :]).to(x.device)
        todo = [(i, j) for i, r in enumerate(row_tiles) for j, c in enumerate(col_tiles)
                if bad[np.ix_(r[row_mask], c[col_mask])].any()]
        bar.total = (bar.total or 0) + len(todo)
        for colour in sorted({(row_colours[i], col_colours[j]) for i, j in todo}):
            batch = [(i, j) for i, j in todo if (row_colours[i], col_colours[j]) == colour]
            rows = torch.from_numpy(np.stack([row_tiles[i] for i, _ in batch]))  # (B, hw)
            cols = torch.from_numpy(np.stack([col_tiles[j] for _, j in batch]))  # (B, ww)
            hr_rows = (rows[:, :, None] * s + torch.arange(s)).flatten(1)
            hr_cols = (cols[:, :, None] * s + torch.arange(s)).flatten(1)

            def gather(t: Tensor, r: Tensor, c: Tensor) -> Tensor:  # (C, …) → (B·C, 1, len r, len c)
                return t[:, r[:, :, None], c[:, None, :]].transpose(0, 1).reshape(-1, 1, r.shape[1], c.shape[1])

            lam_w = gather(lam, rows, cols) * mask
            base = gather(v, hr_rows, hr_cols) - op.adjoint(lam_w)  # the windows' v without their own rows
            result = solve_interval(op, base, gather(x, rows, cols), gather(delta, rows, cols), rows=mask, lam=lam_w,
                                    tol=tol, max_iter=max_iter, squares=squares)
            new_lam = torch.where(mask, result.lam, gather(lam, rows, cols))
            new_v = base + op.adjoint(result.lam * mask)
            count = len(batch)
            lam[:, rows[:, :, None], cols[:, None, :]] = new_lam.reshape(count, channels, *new_lam.shape[-2:]).transpose(0, 1)
            v[:, hr_rows[:, :, None], hr_cols[:, None, :]] = new_v.reshape(count, channels, *new_v.shape[-2:]).transpose(0, 1)
            solved, newton, cg_steps = solved + count, newton + result.iterations, cg_steps + result.cg_steps
            bar.update(count)
            if bool(result.empty.any()):
                empty = True
                break
        residual = _violation(op, v, lam, x, delta).amax(0).cpu().numpy()
        if empty:
            break
    bar.close()
    worst = float(residual.max()) if residual.size else 0.0
    return LocalProjection(v.clamp(0.0, 1.0), lam, worst, worst <= tol, empty, solved, rounds, newton, cg_steps,
                           int(((y0 < 0) | (y0 > 1)).sum()), time.perf_counter() - start, tol)

