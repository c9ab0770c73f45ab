"""The paper's claims, each tested by a measurement in ``results/metrics.csv`` (never typed by hand).

Every claim becomes one row per data set it is tested on: what is measured, our value beside the paper's
(where the paper has one), the margin, and a verdict computed from the numbers:

* ``reproduced`` — the measurement agrees with the claim, by the stated margin;
* ``not reproduced`` — it disagrees;
* ``not testable at this scale`` — the measurement cannot decide it here (e.g. the two-sample classifier
  catches every method's outputs, so it cannot rank them);
* ``not measured`` — a method or metric the claim needs is not in the results (a reduced study).

Margins are signed so that a positive margin favours the claim. Where a method was also trained with
other seeds (runs named ``<method>_seed<k>``, e.g. ``affgan_seed1``: the same settings with
``seed_offset: k``), the claims on AffGAN use the mean over its seeds and count only when the margin
exceeds the spread over seeds (max − min) and every seed alone favours the claim; with one seed the
margin is reported as it is.
Claims and thresholds (paper.md §4, §7):

1. the projection is exact: every projected method's ℓ_MSE(x, Aŷ) ≤ 1e-9 (paper Table 2: 1.6e-10 and
   9.1e-10) — float32 round-off is ~1e-14;
2. AffMSE ≥ MSE in PSNR and SSIM (Table 2: 26.53 vs 26.30 dB, 0.91 vs 0.90);
3. AffGAN is sharper than the MSE models (§5.3, Figs 3–4): its ``spectrum_distance`` to real HR below
   MSE's and AffMSE's;
4. AffGAN's outputs are as plausible as real data / more plausible than MSE's: ``c2st`` (0.5 =
   indistinguishable); testable only where the classifier does not catch every method (< 0.95) and
   the difference exceeds twice its binomial standard error (``c2st_se``);
5. AffGAN beats SoftGAN (Table 2: PSNR 23.02 vs 21.11, SSIM 0.81 vs 0.76) and is consistent;
6. AffDG and AffLL are blurry (§5.3, App. E): farther from the real spectrum than AffGAN, with less
   high-frequency power than real data (``hf_ratio`` < 1) where that metric exists;
7. a likelihood model rates blur likelier than data (App. E): AffLL's and MSE's held-out cross-entropy
   below the real HR images';
8. the toy's Table 1: each H within 15 % of the paper's; AffGAN < SoftGAN, AffDG < SoftDG, both below
   MSE and MAE (MAE within 15 % of the paper or of the posterior median); an order counts only when the
   difference exceeds twice its standard error over restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from affsr.evaluation.metrics import BY_NAME
from affsr.report.display_names import DISPLAY_NAMES
from affsr.toy.paper_table import PAPER_TABLE1

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_TESTABLE = "not testable at this scale"
NOT_MEASURED = "not measured"

#: Projected outputs must be consistent to this ℓ_MSE (the paper's worst projected value is 9.1e-10).
EXACT_LR_MSE = 1e-9
#: A two-sample classifier this accurate on every compared method cannot rank them.
C2ST_SATURATED = 0.95
#: Toy cross-entropies must lie within this relative distance of the paper's.
TOY_TOLERANCE = 0.15

#: The paper's Table 2 (CelebA) and App. E numbers quoted beside ours.
PAPER_TABLE2 = {"mse": {"psnr": 26.30, "ssim": 0.90}, "affmse": {"psnr": 26.53, "ssim": 0.91},
                "softgan": {"psnr": 21.11, "ssim": 0.76}, "affgan": {"psnr": 23.02, "ssim": 0.81}}
PAPER_TOY = {method: row["cross_entropy"] for method, row in PAPER_TABLE1.items()}


COLUMNS = ["claim", "paper", "data set", "measurement", "ours", "paper value", "margin", "verdict"]


@dataclass
class Lookup:
    """metrics.csv as {dataset: {method: {metric: value}}}, with a ``get`` that returns NaN if absent."""

    table: dict

    @classmethod
    def of(cls, metrics: pd.DataFrame) -> "Lookup":
        table: dict = {}
        for row in metrics.itertuples(index=False):
            table.setdefault(row.dataset, {}).setdefault(row.method, {})[row.metric] = float(row.value)
        return cls(table)

    def get(self, dataset: str, method: str, metric: str) -> float:
        return self.table.get(dataset, {}).get(method, {}).get(metric, math.nan)

    def image_datasets(self) -> list[str]:
        return [d for d in self.table if d != "toy"]

    def methods(self, dataset: str) -> list[str]:
        return list(self.table.get(dataset, {}))


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        return f"{value:.1e}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.2f}"


def _verdict(ok: bool) -> str:
    return REPRODUCED if ok else NOT_REPRODUCED


def _row(claim: str, section: str, dataset: str, measurement: str, ours: str, paper: str, margin: str,
         verdict: str) -> dict:
    return dict(zip(COLUMNS, [claim, section, dataset, measurement, ours, paper, margin, verdict]))


def _needs(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def seed_runs(m: Lookup, dataset: str, method: str) -> list[str]:
    """``method`` and its other training seeds in this data set's results (``<method>_seed<k>``)."""
    others = sorted(k for k in m.methods(dataset) if k.startswith(f"{method}_seed") and k[len(method) + 5:].isdigit())
    return [method, *others]


def _over_seeds(m: Lookup, dataset: str, method: str, metric: str) -> tuple[float, float, list[float]]:
    """(mean, spread = max − min, values) of ``metric`` over ``method``'s seeds (spread 0 for one seed)."""
    values = [m.get(dataset, k, metric) for k in seed_runs(m, dataset, method)]
    if not _needs(values):
        return math.nan, math.nan, values
    return sum(values) / len(values), max(values) - min(values), values


def _seed_note(values: list[float]) -> str:
    return f"; {len(values)} seeds, spread {max(values) - min(values):.2g}" if len(values) > 1 else ""


def projection_exact(m: Lookup) -> list[dict]:
    rows = []
    for d in m.image_datasets():
        projected = [k for k in m.methods(d) if k.startswith("aff")]
        values = [m.get(d, k, "lr_mse") for k in projected]
        if not projected or not _needs(values):
            rows.append(_row("the projection is exact", "§3.1, Table 2", d, "max ℓ_MSE of aff* methods",
                             "–", "≤ 9.1e-10", "–", NOT_MEASURED))
            continue
        worst = max(values)
        rows.append(_row("the projection is exact", "§3.1, Table 2", d,
                         f"max ℓ_MSE(x, Aŷ) over {len(projected)} projected methods", _fmt(worst), "≤ 9.1e-10",
                         f"{math.log10(EXACT_LR_MSE / max(worst, 1e-300)):.1f} decades", _verdict(worst <= EXACT_LR_MSE)))
    return rows


def _table2_pairs(m: Lookup, claim: str, section: str, better: str, worse: str, strict: bool) -> list[dict]:
    """PSNR and SSIM of ``better`` against ``worse`` per image domain, beside the paper's Table 2
    (``strict``: better must be above, else at least equal)."""
    rows = []
    for d in m.image_datasets():
        for metric, unit in ((m, BY_NAME[m].unit) for m in ("psnr", "ssim")):
            a, b = m.get(d, better, metric), m.get(d, worse, metric)
            paper = f"{PAPER_TABLE2[better][metric]} vs {PAPER_TABLE2[worse][metric]}"
            if not _needs([a, b]):
                rows.append(_row(claim, section, d, metric, "–", paper, "–", NOT_MEASURED))
                continue
            rows.append(_row(claim, section, d, f"{metric}: {DISPLAY_NAMES[better]} vs {DISPLAY_NAMES[worse]}",
                             f"{_fmt(a)} vs {_fmt(b)}", paper, f"{a - b:+.3g}{unit}",
                             _verdict(a > b if strict else a >= b)))
    return rows


def affmse_beats_mse(m: Lookup) -> list[dict]:
    return _table2_pairs(m, "AffMSE ≥ MSE", "§5.2, Table 2", "affmse", "mse", strict=False)


def affgan_sharper(m: Lookup) -> list[dict]:
    rows = []
    for d in m.image_datasets():
        g, spread, seeds = _over_seeds(m, d, "affgan", "spectrum_distance")
        mse, aff = (m.get(d, k, "spectrum_distance") for k in ("mse", "affmse"))
        if not _needs([g, mse, aff]):
            rows.append(_row("AffGAN sharper than MSE/AffMSE", "§5.3, Figs 3–4", d, "spectrum_distance",
                             "–", "qualitative", "–", NOT_MEASURED))
            continue
        margin = min(mse, aff) - g
        ok = margin > spread and max(seeds) < min(mse, aff)
        rows.append(_row("AffGAN sharper than MSE/AffMSE", "§5.3, Figs 3–4", d,
                         "spectrum_distance to real HR: AffGAN vs min(MSE, AffMSE)",
                         f"{_fmt(g)} vs {_fmt(min(mse, aff))}", "qualitative", f"{margin:+.3g}{_seed_note(seeds)}",
                         _verdict(ok)))
    return rows


def affgan_plausible(m: Lookup) -> list[dict]:
    rows = []
    for d in m.image_datasets():
        g, seed_spread, seeds = _over_seeds(m, d, "affgan", "c2st")
        mse, aff, real = (m.get(d, k, "c2st") for k in ("mse", "affmse", "hr"))
        if not _needs([g, mse, aff]):
            rows.append(_row("AffGAN as plausible as real data", "§5.3–5.5", d, "c2st", "–", "qualitative", "–",
                             NOT_MEASURED))
            continue
        floor = f"; real vs real {_fmt(real)}" if math.isfinite(real) else ""
        rival = "mse" if mse <= aff else "affmse"
        margin = min(mse, aff) - g
        # binomial standard errors of the two held-out accuracies (c2st_se), if evaluated
        se = math.hypot(m.get(d, "affgan", "c2st_se"), m.get(d, rival, "c2st_se"))
        noise = 2 * se if math.isfinite(se) else 0.0
        if min(g, mse, aff) >= C2ST_SATURATED:
            verdict = NOT_TESTABLE  # the classifier catches every method: it cannot rank them
        elif abs(margin) <= noise:
            verdict = NOT_TESTABLE  # too few test images to tell the two apart
        elif abs(margin) <= seed_spread or len({s < min(mse, aff) for s in seeds}) > 1:
            verdict = NOT_TESTABLE  # the training seeds disagree more than the methods differ
        else:
            verdict = _verdict(margin > 0)
        notes = [f"2 s.e. {noise:.2g}"] if math.isfinite(se) else []
        notes += [f"{len(seeds)} seeds, spread {seed_spread:.2g}"] if len(seeds) > 1 else []
        spread = f" ({'; '.join(notes)})" if notes else ""
        rows.append(_row("AffGAN as plausible as real data", "§5.3–5.5", d,
                         "c2st accuracy (0.5 = indistinguishable): AffGAN vs min(MSE, AffMSE)" + floor,
                         f"{_fmt(g)} vs {_fmt(min(mse, aff))}", "qualitative", f"{margin:+.3g}{spread}", verdict))
    return rows


def affgan_beats_softgan(m: Lookup) -> list[dict]:
    return _table2_pairs(m, "AffGAN beats SoftGAN", "§5.4, Table 2", "affgan", "softgan", strict=True)


def guided_blurry(m: Lookup) -> list[dict]:
    rows = []
    for d in m.image_datasets():
        for method, name in (("affdg", "AffDG"), ("affll", "AffLL")):
            s, g = m.get(d, method, "spectrum_distance"), m.get(d, "affgan", "spectrum_distance")
            hf = m.get(d, method, "hf_ratio")
            if not _needs([s, g]):
                rows.append(_row(f"{name} is blurry", "§5.3, App. E", d, "spectrum_distance", "–", "qualitative",
                                 "–", NOT_MEASURED))
                continue
            ok = s > g and (not math.isfinite(hf) or hf < 1)
            extra = f"; hf_ratio {_fmt(hf)}" if math.isfinite(hf) else ""
            rows.append(_row(f"{name} is blurry", "§5.3, App. E", d,
                             f"spectrum_distance: {name} vs AffGAN" + (" (and hf_ratio < 1)" if extra else ""),
                             f"{_fmt(s)} vs {_fmt(g)}{extra}", "qualitative", f"{s - g:+.3g}", _verdict(ok)))
    return rows


def density_prefers_blur(m: Lookup) -> list[dict]:
    rows = []
    for d in m.image_datasets():
        real = m.get(d, "hr", "cross_entropy")
        for method, name in (("affll", "AffLL"), ("mse", "MSE")):
            h = m.get(d, method, "cross_entropy")
            if not _needs([h, real]):
                rows.append(_row("a density model rates blur likelier than data", "App. E", d, "cross_entropy",
                                 "–", "3.5 vs 4.10", "–", NOT_MEASURED))
                continue
            rows.append(_row("a density model rates blur likelier than data", "App. E", d,
                             f"held-out bits/dim: {name} vs real HR", f"{_fmt(h)} vs {_fmt(real)}",
                             "< 3.5 vs 4.10" if method == "affll" else "–",
                             f"{real - h:+.3g}{BY_NAME['cross_entropy'].unit}",
                             _verdict(h < real)))
    return rows


def toy_table1(m: Lookup) -> list[dict]:
    rows = []
    h = {k: m.get("toy", k, "cross_entropy") for k in [*PAPER_TOY, "posterior_median"]}
    if not any(math.isfinite(v) for v in h.values()):
        return rows
    for method, paper in PAPER_TOY.items():
        ours = h[method]
        if not math.isfinite(ours):
            rows.append(_row("toy Table 1 value", "§5.1, Table 1", "toy", f"H[q, p_Y] of {DISPLAY_NAMES[method]} (nats)",
                             "–", f"{paper}", "–", NOT_MEASURED))
            continue
        rel = abs(ours - paper) / paper
        ok = rel <= TOY_TOLERANCE
        reference = f"{paper}"
        if method == "mae" and math.isfinite(h["posterior_median"]):
            rel_median = abs(ours - h["posterior_median"]) / h["posterior_median"]
            reference = f"{paper} (posterior median {_fmt(h['posterior_median'])})"
            ok = ok or rel_median <= TOY_TOLERANCE
            rel = min(rel, rel_median)
        rows.append(_row("toy Table 1 value", "§5.1, Table 1", "toy", f"H[q, p_Y] of {DISPLAY_NAMES[method]} (nats)",
                         _fmt(ours), reference, f"{100 * (TOY_TOLERANCE - rel):+.1f} % of tolerance 15 %",
                         _verdict(ok)))
    for better, worse in (("affgan", "softgan"), ("affdg", "softdg"), ("affgan", "mse"), ("affgan", "mae"),
                          ("affdg", "mse"), ("affdg", "mae")):
        a, b = h[better], h[worse]
        label = f"H: {DISPLAY_NAMES[better]} < {DISPLAY_NAMES[worse]}"
        if not _needs([a, b]):
            rows.append(_row("toy Table 1 order", "§5.1, Table 1", "toy", label, "–", "–", "–", NOT_MEASURED))
            continue
        # the difference of two means over restarts must exceed twice its standard error to count
        sem = math.hypot(*(m.get("toy", k, "cross_entropy_sem") for k in (better, worse)))
        spread = f" (2 s.e. {2 * sem:.2g})" if math.isfinite(sem) else ""
        margin = b - a
        verdict = _verdict(margin > (2 * sem if math.isfinite(sem) else 0.0))
        rows.append(_row("toy Table 1 order", "§5.1, Table 1", "toy", label, f"{_fmt(a)} vs {_fmt(b)}",
                         f"{PAPER_TOY[better]} vs {PAPER_TOY[worse]}", f"{margin:+.3g}{spread} nats", verdict))
    return rows


CLAIMS: tuple[Callable[[Lookup], list[dict]], ...] = (
    projection_exact, affmse_beats_mse, affgan_sharper, affgan_plausible, affgan_beats_softgan, guided_blurry,
    density_prefers_blur, toy_table1,
)


def claims_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Every claim's rows (columns :data:`COLUMNS`) from a tidy metrics table (dataset, method, metric,
    value). Pure: the same metrics give the same table."""
    lookup = Lookup.of(metrics)
    rows = [row for claim in CLAIMS for row in claim(lookup)]
    return pd.DataFrame(rows, columns=COLUMNS)


#: How a verdict reads in the across-tiers view.
VERDICT_MARKS = {REPRODUCED: "✓", NOT_REPRODUCED: "✗", NOT_TESTABLE: "~", NOT_MEASURED: "·"}


def across_tiers(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per claim and data set, one column per tier (a study: ``demo``, ``cpu``, …) holding its
    verdicts with their margins, one per measurement of that claim on that data set (e.g. PSNR and SSIM),
    "·" where the tier did not measure it. ``tables``: tier → :func:`claims_table`, in column order."""
    keys: dict[tuple[str, str], str] = {}
    for table in tables.values():
        for row in table.itertuples(index=False):
            keys.setdefault((row.claim, row[COLUMNS.index("data set")]), row.paper)
    out = []
    for (claim, dataset), paper in keys.items():
        entry = {"claim": claim, "paper": paper, "data set": dataset}
        for tier, table in tables.items():
            rows = table[(table["claim"] == claim) & (table["data set"] == dataset)]
            cells = [VERDICT_MARKS.get(r.verdict, r.verdict) + ("" if r.margin == "–" else f" {r.margin}")
                     for r in rows.itertuples(index=False) if r.verdict != NOT_MEASURED]
            entry[tier] = "; ".join(cells) if cells else VERDICT_MARKS[NOT_MEASURED]
        out.append(entry)
    return pd.DataFrame(out, columns=["claim", "paper", "data set", *tables])


def _tally(table: pd.DataFrame) -> str:
    counts = table["verdict"].value_counts()
    return ", ".join(f"{counts[v]} {v}" for v in (REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE, NOT_MEASURED)
                     if v in counts)


def claims_markdown(table: pd.DataFrame, study: str = "demo", others: dict[str, pd.DataFrame] | None = None) -> str:
    """results/claims.md: the study tier it tests (``demo``, ``cpu``, ``paper``), a tally of verdicts,
    then the table. ``others``: the claims tables of other tiers whose results exist (e.g. ``cpu`` beside
    ``demo``): then a view of every claim across the tiers comes first, so a reader sees where each claim
    is decided, and each other tier's tally."""
    from affsr.report.tables import markdown_table

    text = (f"# The paper's claims, tested (study: {study})\n\nEach verdict is computed from results/metrics.csv by "
            "affsr/report/claims.py (margin > 0 favours the claim). " + _tally(table) + ".\n\n")
    if others:
        tiers = {study: table, **others}
        text += ("## Across tiers\n\n" + "; ".join(f"{tier}: {_tally(t)}" for tier, t in tiers.items()) + ". "
                 "Each cell: the verdicts of that tier (✓ reproduced, ✗ not reproduced, ~ not testable at this "
                 "scale, · not measured) with their margins, one per measurement.\n\n"
                 + markdown_table(across_tiers(tiers)) + f"\n\n## {study}\n\n")
    return text + markdown_table(table) + "\n"
