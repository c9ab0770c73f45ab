"""Projection onto C_δ = {y : |A y − x| ≤ δ, 0 ≤ y ≤ 1} for a whole photo, solving only where it is needed.

Why local: A's support is a few HR pixels (9×9 for the paper's operator), the affine projection
y0 = A⁺x + (I − A⁺A) f already satisfies A y0 = x, and clamping y0 to [0, 1] only disturbs the LR rows
that see a clamped pixel (1.4 % of the rows of a 1024² photo output, by more than half a grey level).
Every other row is satisfied with multiplier λ = 0, so its pixels keep clamp(y0). The global solver of
:mod:`affsr.operators.box_projection` nevertheless ran every CG step over the whole image (retina 1024²
colour: 250 s, not converged).

Method: block coordinate descent on the dual of :mod:`affsr.operators.interval_projection`. Only LR
state is kept whole: a global λ (C, h, w), zero at first, and u (y0 = f + Aᵀu, the affine projection's
correction); the image before clamping, v = f + Aᵀ(u + λ), is computed a band of rows at a time
(:mod:`affsr.operators.row_bands`), so f may live on disk and memory follows the band, not the image.
Each round finds the LR rows that break the optimality conditions (outside their interval, or held at an
end without lying on it) and re-solves λ on every :data:`TILE` × :data:`TILE` tile of rows that holds
one, everything else fixed: a window is the tile plus a margin of one or two LR rows that are not
constrained, so that the tile's kernels never wrap around the window, and the window's share of v is
updated exactly (v_window = base + Aᵀλ_tile, all inside the window). Tiles of one colour (a 2 × 2
checkerboard of tile rows and columns, a third colour where the periodic edge needs one) share no pixel
and are solved as one batch, their bands of v read afresh (so they see every tile solved before them),
in chunks of tile rows that :data:`CHUNK_VALUES` bounds; the next colour starts from their result.
Alternate rounds shift the tiling by half a tile, so that rows on a tile border are solved together with
both neighbours. Rounds repeat until no row breaks the conditions (the exact projection, to ``tol``), a
window proves the set empty, or ``max_rounds`` pass.

Measured on the 256² → 1024² astronaut case (one photo's 3 channels, 8-bit): one global solve 78 s and
not converged in 80 Newton steps; tiles 3.2 s, converged (docs/benchmarks.md, "Upscale at photo size").

A boundary other than circular (``reflect``) couples the border rows differently; there the one window
is the whole image, held in memory. Channels are independent problems and are solved as one batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from affsr.operators.downsampling import Downsampling
from affsr.operators.interval_projection import EPSILON, solve_interval
from affsr.operators.polyphase import fast_operator, squares_operator
from affsr.operators.row_bands import HRRows, InMemory, bands, lr_errors, margins, v_rows

__all__ = ["LocalProjection", "project_locally", "lr_state", "TILE"]

#: LR pixels per side of a tile: the rows one window constrains (its margins add one or two per side).
TILE = 16
#: Values of v (float64) read for the tile rows solved together: 8 M = 64 MB. Tile rows of one colour are
#: solved as one batch in chunks this size bounds (25 tile rows of a 4096-wide output; a whole 1024²).
CHUNK_VALUES = 8 * 2**20


@dataclass(frozen=True)
class LocalProjection:
    """Result of :func:`project_locally`. image: (C, H, W) float64 in [0, 1] when f was a tensor, else None
    (read the answer by rows: clamp(f + Aᵀ(u + λ))); lam: (C, h, w) the dual (a warm start for a re-solve
    with other δ); residual: the largest optimality violation of any row (1 =
    white; ≤ tol when converged); empty: a window proved C_δ empty; windows, rounds, newton, cg_steps:
    the work done; clipped_before: pixels of y0 outside [0, 1]; seconds: wall time."""

    image: Tensor | None
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


def _violation(op: Downsampling, f: HRRows, u: Tensor | None, lam: Tensor, x: Tensor, delta: Tensor) -> np.ndarray:
    """Per row, the largest over channels (h, w): how far it is from the optimality conditions of the exact
    (ε → 0) problem. A row with λ ≈ 0 (|λ| ≤ εδ) must lie in its interval; a row held at an end must lie
    on that end. Computed a band of rows at a time (:func:`lr_errors`)."""
    gap = lr_errors(op, f, lr_state(u, lam), x, lambda v: v.clamp(0.0, 1.0))
    held = lam.abs() > EPSILON * delta
    outside = (gap.abs() - delta).clamp(min=0.0)
    return torch.where(held, (gap + delta * lam.sign()).abs(), outside).amax(0).cpu().numpy()


def lr_state(u: Tensor | None, lam: Tensor) -> Tensor:
    """z = u + λ (C, h, w): the answer is clamp(f + Aᵀz, 0, 1) (u None: y0 = f)."""
    return lam if u is None else u + lam


def project_locally(op: Downsampling, f: Tensor | HRRows, x: Tensor, delta: Tensor, u: Tensor | None = None,
                    lam: Tensor | None = None, tol: float = 1e-9, tile: int = TILE, max_rounds: int = 12,
                    max_iter: int = 80, progress: bool = False) -> LocalProjection:
    """Nearest point of C_δ to y0 = f + Aᵀu for one image (module docstring).

    f: (C, H, W), a tensor or an image read by rows (:class:`~affsr.operators.row_bands.HRRows`, e.g. on
    disk); u: (C, h, w) or None (y0 = f); x and delta: (C, h, w), delta ≥ 0 (0: the exact set); lam: a
    previous result's λ to start from. The answer is clamp(f + Aᵀ(u + λ), 0, 1): ``image`` holds it when
    f is a tensor; otherwise the caller reads it by rows (:func:`~affsr.operators.row_bands.v_rows`).
    Float64 on x's device. ``progress``: a progress bar (stderr) over the tiles solved, for runs longer
    than two seconds."""
    from tqdm import tqdm

    start = time.perf_counter()
    whole = isinstance(f, Tensor)
    source = InMemory(f) if whole else f
    boundary, fast = op.boundary, fast_operator(op)
    squares = squares_operator(fast)
    x = x.detach().double()
    u = None if u is None else u.detach().double()
    delta = delta.double().expand_as(x).contiguous()
    lam = torch.zeros_like(x) if lam is None else lam.double().clone()
    s, (channels, h, w) = op.scale, x.shape
    grids = []  # the tiling of even rounds, and of odd rounds shifted by half a tile (rows on a tile border
    for shift in (0, tile // 2):  # get solved with both neighbours' rows in one window)
        if boundary != "circular":  # one window, the whole image (module docstring)
            grid = (([np.arange(h)], np.ones(h, dtype=bool), [0]), ([np.arange(w)], np.ones(w, dtype=bool), [0]))
        else:
            grid = (_tiles(h, tile, *margins(op, 0), shift), _tiles(w, tile, *margins(op, 1), shift))
        grids.append(grid)
    solved = newton = cg_steps = rounds = 0
    empty = False
    bar = tqdm(desc="projection", unit="tile", delay=2.0, disable=not progress, leave=False)
    residual = _violation(op, source, u, lam, x, delta)
    for rounds in range(1, max_rounds + 1):
        if not (residual > tol).any():
            rounds -= 1
            break
        bad = residual > tol
        (row_tiles, row_mask, row_colours), (col_tiles, col_mask, col_colours) = grids[(rounds - 1) % 2]
        mask = torch.from_numpy(row_mask[:, None] & col_mask[None, :]).to(x.device)
        todo = {i: [j for j, c in enumerate(col_tiles) if bad[np.ix_(r[row_mask], c[col_mask])].any()]
                for i, r in enumerate(row_tiles)}
        todo = {i: cols for i, cols in todo.items() if cols}
        bar.total = (bar.total or 0) + sum(map(len, todo.values()))
        per_chunk = max(1, CHUNK_VALUES // (channels * s * len(row_tiles[0]) * s * w))
        for colour in sorted({row_colours[i] for i in todo}):  # tile rows of one colour share no LR row
            rows_of_colour = [i for i in todo if row_colours[i] == colour]
            for c0 in range(0, len(rows_of_colour), per_chunk):
                chunk = rows_of_colour[c0:c0 + per_chunk]
                # the chunk's bands of v (K, C, s·rows, W), read afresh: they see every tile solved before
                v = torch.stack([v_rows(op, source, lr_state(u, lam), row_tiles[i]) for i in chunk])
                for col_colour in sorted({col_colours[j] for i in chunk for j in todo[i]}):
                    batch = [(k, j) for k, i in enumerate(chunk) for j in todo[i] if col_colours[j] == col_colour]
                    band = torch.tensor([k for k, _ in batch])[:, None]  # (B, 1): each window's band in the chunk
                    rows = torch.from_numpy(np.stack([row_tiles[chunk[k]] for k, _ in batch]))  # (B, hw)
                    cols = torch.from_numpy(np.stack([col_tiles[j] for _, j in batch]))  # (B, ww)
                    hr_cols = (cols[:, :, None] * s + torch.arange(s)).flatten(1)  # (B, s·ww)
                    count, size = len(batch), (rows.shape[1], cols.shape[1])
                    v_w = v[band, :, :, hr_cols].permute(0, 2, 3, 1).reshape(count * channels, 1, s * size[0], s * size[1])
                    old = _windows(lam, rows, cols)
                    base = v_w - fast.adjoint(old * mask)  # the windows' v without their own rows
                    result = solve_interval(fast, base, _windows(x, rows, cols), _windows(delta, rows, cols),
                                            rows=mask, lam=old * mask, tol=tol, max_iter=max_iter, squares=squares)
                    new_lam = torch.where(mask, result.lam, old).reshape(count, channels, *size).transpose(0, 1)
                    new_v = (base + fast.adjoint(result.lam * mask)).reshape(count, channels, s * size[0], s * size[1])
                    lam[:, rows[:, :, None], cols[:, None, :]] = new_lam
                    v[band, :, :, hr_cols] = new_v.permute(0, 3, 1, 2)
                    solved, newton, cg_steps = solved + count, newton + result.iterations, cg_steps + result.cg_steps
                    bar.update(count)
                    if bool(result.empty.any()):
                        empty = True
                        break
                if empty:
                    break
            if empty:
                break
        residual = _violation(op, source, u, lam, x, delta)
        if empty:
            break
    bar.close()
    worst = float(residual.max()) if residual.size else 0.0
    image = v_rows(op, source, lr_state(u, lam), np.arange(h)).clamp(0.0, 1.0) if whole else None
    clipped = int(sum(((v < 0) | (v > 1)).sum() for v in (v_rows(op, source, u, np.arange(a, b)) for a, b in bands(h))))
    return LocalProjection(image, lam, worst, worst <= tol, empty, solved, rounds, newton, cg_steps,
                           clipped, time.perf_counter() - start, tol)


def _windows(t: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """LR windows (B·C, 1, hw, ww) of t (C, h, w) for index sets rows (B, hw) and cols (B, ww)."""
    return t[:, rows[:, :, None], cols[:, None, :]].transpose(0, 1).reshape(-1, 1, rows.shape[1], cols.shape[1])
