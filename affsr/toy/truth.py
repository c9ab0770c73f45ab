"""Ground truth of the toy: a Gaussian KDE of the noise-free roll, and brute-force MAP, posterior mean
and median along each solution line {y : Ay = x}.

How the KDE is evaluated (float64 unless stated):

* :meth:`RollKDE.log_density` — the exact KDE, chunked log-sum-exp over all samples (the reference;
  ~1 ms per point on a 2-core CPU, too slow for the ~10⁵ points of a study).
* On product grids the Gaussian kernel factorises, so the KDE on a whole grid is ONE matrix product
  (:meth:`RollKDE.grid_log_density`; float32 products, float64 sums): used for (a) the brute-force MAP
  search in the line coordinates (x, t) of y = A⁺x + t·v, where ‖y − s‖² = 2(x − a_s)² + (t − t_s)² with
  a_s = A s, t_s = v·s, and (b) a table of log p on a fine axis-aligned grid.
* :meth:`RollKDE.fast_log_density` — bilinear interpolation of that table (log space), used for the
  cross-entropy of model outputs; points off the table or where float32 underflow could matter
  (log p ≲ −67) fall back to the exact KDE. Measured against the exact KDE at step 0.02: ≲ 2·10⁻³ nats
  on the roll (mean ≈ 10⁻³), far below the two decimals reported.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from affsr.toy.roll import V, sample_roll

#: Kernel sums below this are not trusted from a float32 product (single terms may underflow there).
_F32_EXACT = 1e-25


class RollKDE:
    """Isotropic Gaussian KDE p(y) = (1/N) Σ_s N(y; s, h²I) of noise-free roll samples (float64, CPU)."""

    def __init__(self, samples: Tensor, bandwidth: float, grid_step: float = 0.02):
        self.samples = samples.detach().to("cpu", torch.float64)
        self.h = float(bandwidth)
        self.grid_step = float(grid_step)
        self.log_norm = math.log(len(self.samples) * 2.0 * math.pi * self.h**2)
        s = self.samples
        self.a = 0.5 * (s[:, 0] + s[:, 1])  # A s: which line a sample sits on
        self.t = V[0] * s[:, 0] + V[1] * s[:, 1]  # its position along the line
        self._table: tuple[Tensor, Tensor, Tensor] | None = None

    @classmethod
    def fit(cls, n: int, bandwidth: float, generator: torch.Generator, grid_step: float = 0.02) -> "RollKDE":
        return cls(sample_roll(n, generator, noisy=False, dtype=torch.float64), bandwidth, grid_step)

    # exact, any points
    def log_density(self, points: Tensor, chunk: int = 256) -> Tensor:
        """Exact log p(y) in nats for points (n, 2): chunked log-sum-exp over all samples."""
        points = torch.as_tensor(points).to("cpu", torch.float64).reshape(-1, 2)
        out = [torch.logsumexp(torch.cdist(points[i:i + chunk], self.samples).square_().mul_(-0.5 / self.h**2), 1)
               for i in range(0, len(points), chunk)]
        return (torch.cat(out) if out else points.new_zeros(0)) - self.log_norm

    # exact, product grids
    def _separable(self, u: Tensor, v: Tensor, su: Tensor, sv: Tensor, hu: float, hv: float,
                   dtype: torch.dtype = torch.float32, chunk: int = 8192) -> Tensor:
        """log (1/N·2πh²) Σ_s exp(−(u_i − su_s)²/2hu² − (v_j − sv_s)²/2hv²) for all i, j: one matmul.

        Kernel factors are exponentiated in float64 and multiplied in ``dtype`` (float32: 2–3× faster),
        the sums accumulated in float64. With float32, sums below :data:`_F32_EXACT` (where float32
        underflow of single terms could matter; log p ≲ −67 nats) are returned as NaN: "not computed".
        """
        u, v = u.to(torch.float64), v.to(torch.float64)
        total = torch.zeros(len(u), len(v), dtype=torch.float64)
        for i in range(0, len(su), chunk):
            ku = torch.exp((u[None, :] - su[i:i + chunk, None]).square_().mul_(-0.5 / hu**2)).to(dtype)
            kv = torch.exp((v[None, :] - sv[i:i + chunk, None]).square_().mul_(-0.5 / hv**2)).to(dtype)
            total += (ku.T @ kv).to(torch.float64)
        if dtype != torch.float64:
            total[total < _F32_EXACT] = math.nan
        return total.log_() - self.log_norm

    def grid_log_density(self, u: Tensor, v: Tensor, coords: str = "xy",
                         dtype: torch.dtype = torch.float64) -> Tensor:
        """Exact log p on the product grid u × v, shape (len(u), len(v)).

        ``coords="xy"``: points (u_i, v_j) in the plane. ``coords="line"``: points A⁺u_i + v_j·V, i.e.
        position v_j along the solution line of x = u_i. float64: entries that underflow (≳ 7.5 from
        every sample) are −inf; float32 (faster): entries with log p ≲ −67 are NaN (see ``_separable``).
        """
        if coords == "xy":
            return self._separable(u, v, self.samples[:, 0], self.samples[:, 1], self.h, self.h, dtype)
        if coords == "line":
            # ‖A⁺x + tV − s‖² = 2(x − a_s)² + (t − t_s)²
            return self._separable(u, v, self.a, self.t, self.h / math.sqrt(2.0), self.h, dtype)
        raise ValueError(f"coords must be 'xy' or 'line', got '{coords}'")

    # fast, any points
    def table(self) -> tuple[Tensor, Tensor, Tensor]:
        """(grid x, grid y, log p on the grid): the box of the samples ± 10 bandwidths, ``grid_step``."""
        if self._table is None:
            lo = self.samples.min(0).values - 10 * self.h
            hi = self.samples.max(0).values + 10 * self.h
            n = [int(math.ceil(float(hi[k] - lo[k]) / self.grid_step)) + 1 for k in range(2)]
            gx = lo[0] + self.grid_step * torch.arange(n[0], dtype=torch.float64)
            gy = lo[1] + self.grid_step * torch.arange(n[1], dtype=torch.float64)
            self._table = (gx, gy, self.grid_log_density(gx, gy, dtype=torch.float32))
        return self._table

    def fast_log_density(self, points: Tensor) -> Tensor:
        """log p(y) by bilinear interpolation (log space) of :meth:`table`; exact outside it."""
        points = torch.as_tensor(points).to("cpu", torch.float64).reshape(-1, 2)
        gx, gy, table = self.table()
        step = self.grid_step
        fx = (points[:, 0] - gx[0]) / step
        fy = (points[:, 1] - gy[0]) / step
        inside = (fx >= 0) & (fx <= len(gx) - 1) & (fy >= 0) & (fy <= len(gy) - 1) & torch.isfinite(fx + fy)
        out = torch.empty(len(points), dtype=torch.float64)
        ix = fx[inside].floor().clamp(max=len(gx) - 2).long()
        iy = fy[inside].floor().clamp(max=len(gy) - 2).long()
        wx, wy = fx[inside] - ix, fy[inside] - iy
        corners = (table[ix, iy] * (1 - wx) * (1 - wy) + table[ix + 1, iy] * wx * (1 - wy)
                   + table[ix, iy + 1] * (1 - wx) * wy + table[ix + 1, iy + 1] * wx * wy)
        out[inside] = corners
        if (~inside).any():
            out[~inside] = self.log_density(points[~inside])
        # a corner not computed in float32 (NaN, log p ≲ −67) or underflowed: use the exact value there
        bad = ~torch.isfinite(out)
        if bad.any():
            out[bad] = self.log_density(points[bad])
        return out


def map_estimates(kde: RollKDE, x: Tensor, step: float = 0.02) -> tuple[Tensor, Tensor]:
    """Brute-force MAP along each solution line {y : Ay = x}: (points (n, 2), their log p (n,)).

    The grid t ∈ [min t_s, max t_s] (step ``step``; :func:`line_estimates` widens it) covers every KDE
    centre's position along the line; the line density is a Gaussian mixture in t, whose maximum lies
    inside the hull of its centres. The MAP point is the grid point of highest KDE density (products in
    float32: relative error ~1e-6).
    """
    found = line_estimates(kde, x, step)
    return found["map"], found["map_log_density"]


def line_estimates(kde: RollKDE, x: Tensor, step: float = 0.02) -> dict[str, Tensor]:
    """The Bayes estimators of each x by brute force along its solution line, in one scan.

    Returns points (n, 2) ``map`` (posterior mode: MAP), ``posterior_mean`` (the Bayes estimator under
    squared error: what an MSE-trained net should converge to) and ``posterior_median`` (under absolute
    error, per coordinate: MAE's target; the line is monotone in each coordinate, so the coordinate-wise
    median is the median along t, linearly interpolated in the CDF), and ``map_log_density`` (n,).

    One table of log p over (lines × positions) serves all three (grid as in :func:`map_estimates`,
    widened by 5 bandwidths on each side so the posterior's tails are summed too; the MAP, inside the
    hull, is unchanged). Entries the float32 product does not compute (log p ≲ −67) count as zero
    posterior weight; lines with none computed are redone in float64, and lines where even float64
    underflows everywhere (≳ 5 bandwidths·√2 from every sample in x) with the exact log-sum-exp KDE.
    """
    x = torch.as_tensor(x).to("cpu", torch.float64).reshape(-1)
    t = _line_grid(kde, step, margin=5 * kde.h)
    parts: dict[str, list[Tensor]] = {"map_t": [], "mean_t": [], "median_t": [], "map_log_density": []}
    for i in range(0, len(x), 512):  # bound the (lines × positions) table to ~512 × 1000 doubles
        xs = x[i:i + 512]
        logp = torch.nan_to_num(kde.grid_log_density(xs, t, coords="line", dtype=torch.float32),
                                nan=-math.inf)
        far = ~torch.isfinite(logp.max(dim=1).values)  # line far from every sample (|x| ≳ 8.5)
        if far.any():
            logp[far] = kde.grid_log_density(xs[far], t, coords="line")
        for row in torch.nonzero(~torch.isfinite(logp.max(dim=1).values)).reshape(-1).tolist():
            logp[row] = kde.log_density(_on_line(xs[row].expand(len(t)), t))
        value, index = logp.max(dim=1)
        weights = torch.softmax(logp, dim=1)
        cdf = torch.cumsum(weights, dim=1) - 0.5 * weights  # each grid point's mass centred on it
        # first position where the CDF reaches ½, then linear interpolation from the one before it
        upper = torch.searchsorted(cdf, torch.full((len(xs), 1), 0.5, dtype=cdf.dtype)).clamp(1, len(t) - 1)
        c_hi, c_lo = cdf.gather(1, upper)[:, 0], cdf.gather(1, upper - 1)[:, 0]
        frac = ((0.5 - c_lo) / (c_hi - c_lo).clamp_min(1e-300)).clamp(0.0, 1.0)
        parts["median_t"].append(t[upper[:, 0] - 1] + frac * (t[upper[:, 0]] - t[upper[:, 0] - 1]))
        parts["mean_t"].append(weights @ t)
        parts["map_t"].append(t[index])
        parts["map_log_density"].append(value)
    cat = {k: (torch.cat(v) if v else x.new_zeros(0)) for k, v in parts.items()}
    return {"map": _on_line(x, cat["map_t"]), "posterior_mean": _on_line(x, cat["mean_t"]),
            "posterior_median": _on_line(x, cat["median_t"]), "map_log_density": cat["map_log_density"]}


def _line_grid(kde: RollKDE, step: float, margin: float = 0.0) -> Tensor:
    """Positions t of step ``step`` over [min t_s, max t_s], plus ``margin`` on each side (whole steps,
    so the grid without margin is a subset of the one with it)."""
    lo, hi = float(kde.t.min()), float(kde.t.max())
    extra = int(math.ceil(margin / step))
    n = int(math.ceil((hi - lo) / step)) + 1 + 2 * extra
    return lo - extra * step + step * torch.arange(n, dtype=torch.float64)


def _on_line(x: Tensor, t: Tensor) -> Tensor:
    """A⁺x + t·V."""
    return torch.stack([x + t * V[0], x + t * V[1]], dim=1)


def line_posterior(kde: RollKDE, x: float, t: Tensor) -> dict[str, np.ndarray | float]:
    """The posterior p(y | x) ∝ p_KDE along the line of ``x`` at positions ``t``, with its mean (MSE's
    Bayes estimate), median (MAE's, per coordinate = along t since the line is monotone in each
    coordinate) and mode (MAP), each as a 2-D point. ``t`` must cover the posterior's mass."""
    t = torch.as_tensor(t, dtype=torch.float64)
    xs = torch.tensor([float(x)], dtype=torch.float64)
    logp = kde.grid_log_density(xs, t, coords="line")[0]
    weights = torch.softmax(logp, 0)
    mean_t = float((weights * t).sum())
    cdf = torch.cumsum(weights, 0) - 0.5 * weights  # as in line_estimates: each point's mass centred on it
    median_t = float(np.interp(0.5, cdf.numpy(), t.numpy()))
    mode_t = float(t[int(torch.argmax(logp))])
    points = {k: _on_line(xs, torch.tensor([v], dtype=torch.float64))[0].numpy()
              for k, v in (("mse", mean_t), ("mae", median_t), ("map", mode_t))}
    return {"t": t.numpy(), "points": _on_line(xs.expand(len(t)), t).numpy(), "log_density": logp.numpy(),
            "estimates": points}
