"""Rounding the output without breaking the round trip: a greedy repair on the integer image.

Why: the projection leaves room for rounding the output (δ = q_in/2 − q_out/4), but where an image has
no room — binary images, whose truth sits on the corners of the box — the widest set that holds the
truth is used, and rounding the output to its depth can then push a row of A ŷ to half an input step or
beyond. The written file is integers; so the last step works on them: for each broken row, move one of
its pixels by one level in the direction that brings the row back — the move that most lowers the
total excess of the rows that pixel touches (so a neighbour may give a little where it has room) — and
repeat. The total excess falls with every move, so the repair ends. Each move changes
an image value by one output level, so the file stays within a level of the projection there.

Circular boundary (the windows of the local projection use it too); rows are the LR pixels.
"""

from __future__ import annotations

import numpy as np

from affsr.operators.downsampling import Downsampling

__all__ = ["repair_rounding"]

#: Phases of pair moves (each row left broken by single moves gets one pair search per phase: ~0.4 s),
#: tried only when at most PAIR_ROWS rows are left: the repair is for the few rows rounding breaks, and a
#: set that thin everywhere (a binary image at 16 bits) is not one it can mend in reasonable time.
PAIR_PHASES, PAIR_ROWS = 2, 50
#: Single moves per broken row at most, over all passes.
MOVES_PER_ROW = 20


def _rows_of_pixel(op: Downsampling, p: int, q: int, h: int, w: int) -> list[tuple[int, int, float]]:
    """The LR rows (i, j) whose kernel reads HR pixel (p, q), with the weight they read it with."""
    s, (oy, ox) = op.scale, op.origin
    kernel = op.kernel.numpy()
    rows = []
    for a in range(kernel.shape[0]):
        if (p + oy - a) % s:
            continue
        for b in range(kernel.shape[1]):
            if (q + ox - b) % s == 0 and kernel[a, b] != 0:
                rows.append((((p + oy - a) // s) % h, ((q + ox - b) // s) % w, float(kernel[a, b])))
    return rows


def repair_rounding(op: Downsampling, levels: np.ndarray, off: np.ndarray, bits: int, limit: float,
                    max_moves: int | None = None) -> int:
    """Move pixels of the integer image ``levels`` (H, W) (values 0 … 2^bits − 1; edited in place, e.g. a
    memmap of the output's samples) by one level until every row of A (levels / (2^bits − 1)) is within
    ``limit`` of the LR input x, where a move can do it. ``off``: (h, w) A (levels / top) − x as it is
    now (the caller has it from its check; kept up to date here on a copy). Passes repeat while they
    make moves (a move blocked once may be free after others). Returns the number of rows still at or
    beyond ``limit``. ``max_moves``: default :data:`MOVES_PER_ROW` per row broken at the start."""
    top = 2**bits - 1
    off = off.copy()
    if max_moves is None:
        max_moves = MOVES_PER_ROW * int((np.abs(off) >= limit * (1 - 1e-9)).sum())
    moves = 0
    for _ in range(PAIR_PHASES + 1):
        made = True
        while made and moves < max_moves:  # single moves until none helps
            made = False
            for i, j in zip(*np.nonzero(np.abs(off) >= limit * (1 - 1e-9))):
                count = _repair_row(op, levels, off, (i, j), limit, top, max_moves - moves)
                moves, made = moves + count, made or count > 0
        broken = list(zip(*np.nonzero(np.abs(off) >= limit * (1 - 1e-9))))
        if not broken or _ == PAIR_PHASES or len(broken) > PAIR_ROWS:
            break
        pairs = sum(_pair_move(op, levels, off, (i, j), limit, top) for i, j in broken)  # then pairs, once each
        if not pairs:
            break
    return int((np.abs(off) >= limit * (1 - 1e-9)).sum())


def _pair_move(op: Downsampling, levels: np.ndarray, off: np.ndarray, row: tuple[int, int], limit: float,
               top: int) -> int:
    """For a row no single move helps: the best pair of one-level moves among its pixels (one may go the
    other way, to give a neighbour back what the first took). 1 if one was made, else 0."""
    (i, j), (height, width), (h, w) = row, levels.shape, off.shape
    s, (oy, ox), kernel = op.scale, op.origin, op.kernel.numpy()
    singles = []
    for a, b in zip(*np.nonzero(kernel)):
        p, q = (s * i + a - oy) % height, (s * j + b - ox) % width
        for direction in (-1, 1):
            if 0 <= int(levels[p, q]) + direction <= top:
                singles.append((p, q, direction, [(k, m, direction * wt / top) for k, m, wt in _rows_of_pixel(op, p, q, h, w)]))
    best = None
    for first in range(len(singles)):
        for second in range(first + 1, len(singles)):
            (p1, q1, d1, e1), (p2, q2, d2, e2) = singles[first], singles[second]
            if (p1, q1) == (p2, q2):
                continue
            change: dict = {}
            for k, m, delta in e1 + e2:
                change[(k, m)] = change.get((k, m), off[k, m]) + delta
            gain = sum(_excess(off[key], limit) - _excess(v, limit) for key, v in change.items())
            if gain > 0 and (best is None or gain > best[0]):
                best = (gain, ((p1, q1, d1), (p2, q2, d2)), change)
    if best is None:
        return 0
    for p, q, direction in best[1]:
        levels[p, q] = int(levels[p, q]) + direction
    for key, value in best[2].items():
        off[key] = value
    return 1


def _excess(value: float, limit: float) -> float:
    """How far a row's A ŷ − x is at or beyond ``limit`` (a row exactly at it counts: it rounds either way)."""
    return max(0.0, abs(value) - limit * (1 - 1e-9))


def _repair_row(op: Downsampling, levels: np.ndarray, off: np.ndarray, row: tuple[int, int], limit: float,
                top: int, budget: int) -> int:
    """Moves (in place) for one row until it is within ``limit`` or no move helps; the number made."""
    (i, j), (height, width), (h, w) = row, levels.shape, off.shape
    s, (oy, ox), kernel = op.scale, op.origin, op.kernel.numpy()
    moves = 0
    while abs(off[i, j]) >= limit and moves < budget:
        direction = -1 if off[i, j] > 0 else 1
        best = None
        for a, b in zip(*np.nonzero(kernel)):
            p, q = (s * i + a - oy) % height, (s * j + b - ox) % width
            if not 0 <= int(levels[p, q]) + direction <= top:
                continue
            change = {(k, m): off[k, m] + direction * weight / top for k, m, weight in _rows_of_pixel(op, p, q, h, w)}
            gain = sum(_excess(off[key], limit) - _excess(v, limit) for key, v in change.items())
            if gain > 0 and (best is None or gain > best[0]):  # the rows it touches, together, get closer
                best = (gain, p, q, change)
        if best is None:
            break
        _, p, q, change = best
        levels[p, q] = int(levels[p, q]) + direction
        for key, value in change.items():
            off[key] = value
        moves += 1
    return moves
