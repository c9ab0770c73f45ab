"""The published results and the tables of the README and docs/ made from them (no number in them is typed).

The workflow owns ``results/``: nothing there is committed, so a fresh clone reruns every rule. What the
README and the result pages show is a *published* copy, ``docs/results/`` (committed), made by ``affsr
publish`` (``make publish``) from a finished study: the metrics, the claims, the toy table and the
figures. The tables of :data:`DOCUMENTS` sit between markers

    <!-- generated:NAME -->
    ...
    <!-- /generated:NAME -->

and are rewritten from the published files by the same command; :func:`check_readme` (run by the tests on
every document) fails when a block disagrees with the files it quotes, when a marker has no block, or when
a placeholder (an ALL_CAPS_WORD standing alone, ``TODO``, ``XXX``) is left in the text.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd

from affsr.atomic_files import write_text
from affsr.evaluation.metrics import METRICS
from affsr.report.claims import NOT_MEASURED, REPRODUCED, VERDICT_MARKS, claims_table
from affsr.report.tables import markdown_table

#: The documents (relative to the repository) whose generated blocks ``publish`` rewrites.
DOCUMENTS = ("README.md", "docs/results.md", "docs/studies.md")
#: Files copied from results/ to the published folder (figures: every PNG).
PUBLISHED_FILES = ("metrics.csv", "summary.md", "claims.md", "toy/table1.md")
#: Columns of the per-domain tables in the README, in order, with their formats: the metrics of
#: :data:`~affsr.evaluation.metrics.METRICS` that have a ``readme_format``.
README_METRICS = {m.name: m.readme_format for m in METRICS if m.readme_format}

_BLOCK = re.compile(r"<!-- generated:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /generated:(?P=name) -->", re.S)
_PLACEHOLDER = re.compile(r"(?<![\w`/.-])(?:[A-Z][A-Z0-9]*_[A-Z0-9_]+|TODO|XXX)(?![\w`/.-])")


def _table_lines(text: str) -> str:
    """The Markdown tables of a results file (its runs of lines that start with ``|``), in order, separated
    by a blank line so that each stays its own table (claims.md holds two when other tiers exist)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current))
            current = []
    return "\n\n".join(tables)


def domain_table(metrics: pd.DataFrame, dataset: str) -> str:
    """One data set's methods × the README's metrics, formatted; '–' where a metric is absent."""
    rows = metrics[metrics["dataset"] == dataset]
    wide = rows.pivot_table(index="method", columns="metric", values="value", aggfunc="first", sort=False)
    columns = [c for c in README_METRICS if c in wide.columns]
    out = pd.DataFrame({"method": wide.index})
    for c in columns:
        out[c] = [("–" if pd.isna(v) else README_METRICS[c].format(v)) for v in wide[c]]
    return markdown_table(out)


def draws_table(metrics: pd.DataFrame) -> str:
    """Diversity and worst-draw consistency of every stochastic run, per data set."""
    rows = []
    for (dataset, method), sub in metrics.groupby(["dataset", "method"], sort=False):
        values = dict(zip(sub["metric"], sub["value"]))
        if "diversity" in values:
            rows.append({"data set": dataset, "method": method, "diversity": f"{values['diversity']:.3f}",
                         "lr_mse_draws": f"{values['lr_mse_draws']:.1e}",
                         "PSNR / SSIM (first draw)": f"{values['psnr']:.2f} / {values['ssim']:.3f}"})
    return markdown_table(pd.DataFrame(rows, columns=["data set", "method", "diversity", "lr_mse_draws",
                                                 "PSNR / SSIM (first draw)"]))


def claims_overview(tables: dict[str, pd.DataFrame]) -> str:
    """One row per claim, one column per data set: ✓ every measurement reproduces it, ✗ none does,
    "k/n ✓" k of n do, ~ not testable at this scale; a tier after the first that measured it adds its
    own mark ("~ · cpu ✓"). ``tables``: tier → :func:`~affsr.report.claims.claims_table`, first tier first."""
    def mark(verdicts: list[str]) -> str:
        if len(set(verdicts)) == 1:
            return VERDICT_MARKS.get(verdicts[0], verdicts[0])
        return f"{verdicts.count(REPRODUCED)}/{len(verdicts)} ✓"

    first, *others = tables
    datasets = list(dict.fromkeys(t for table in tables.values() for t in table["data set"]))
    rows = []
    for claim, of_claim in tables[first].groupby("claim", sort=False):
        row = {"claim": claim, "paper": of_claim["paper"].iloc[0]}
        for dataset in datasets:
            cells = []
            for tier in (first, *others):
                table = tables[tier]
                verdicts = [v for v in table.loc[(table["claim"] == claim) & (table["data set"] == dataset), "verdict"]
                            if v != NOT_MEASURED]
                if verdicts:
                    cells.append(mark(verdicts) if tier == first else f"{tier} {mark(verdicts)}")
            row[dataset] = " · ".join(cells)
        rows.append(row)
    return markdown_table(pd.DataFrame(rows, columns=["claim", "paper", *datasets]))


def blocks(published: Path) -> dict[str, str]:
    """Every generated README block, made from the published files in ``published``."""
    published = Path(published)
    metrics = pd.read_csv(published / "metrics.csv")
    out = {f"metrics-{d}": domain_table(metrics, d) for d in metrics["dataset"].unique() if d != "toy"}
    out["draws"] = draws_table(metrics)
    out["claims"] = _table_lines((published / "claims.md").read_text(encoding="utf-8"))
    tally = [line for line in (published / "claims.md").read_text(encoding="utf-8").splitlines()
             if line.startswith("Each verdict")]
    out["claims-tally"] = tally[0] if tally else ""
    out["toy-table1"] = _table_lines((published / "toy/table1.md").read_text(encoding="utf-8"))
    return out


def published_blocks(root: Path) -> dict[str, str]:
    """The blocks of every published study under ``root``: the default study's (``root`` itself) and,
    for each tier folder ``root/<tier>`` holding a published study (e.g. ``cpu``), its blocks prefixed
    ``<tier>-`` (``cpu-claims``, ``cpu-metrics-grass``, …)."""
    root = Path(root)
    made = blocks(root)
    tiers = sorted(p for p in root.iterdir() if p.is_dir() and (p / "metrics.csv").is_file())
    for tier in tiers:
        made.update({f"{tier.name}-{k}": v for k, v in blocks(tier).items()})
    tables = {"demo": claims_table(pd.read_csv(root / "metrics.csv"))}
    tables.update({tier.name: claims_table(pd.read_csv(tier / "metrics.csv")) for tier in tiers})
    made["claims-overview"] = claims_overview(tables)
    return made


def render(text: str, made: dict[str, str]) -> str:
    """``text`` with every generated block replaced by ``made[name]``; unknown names are errors."""
    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in made:
            raise ValueError(f"README block '{name}' has no generator; known: {', '.join(sorted(made))}")
        return f"<!-- generated:{name} -->\n{made[name]}\n<!-- /generated:{name} -->"

    return _BLOCK.sub(replace, text)


def check_readme(text: str, made: dict[str, str]) -> list[str]:
    """Problems of a README against the published results: stale blocks, unclosed markers,
    placeholders. Empty when the README is right."""
    problems = []
    for match in _BLOCK.finditer(text):
        name = match["name"]
        if name not in made:
            problems.append(f"block '{name}' has no generator")
        elif match["body"] != made[name] + "\n":
            problems.append(f"block '{name}' disagrees with the published results (run `make publish`)")
    opened = set(re.findall(r"<!-- generated:([\w-]+) -->", text))
    closed = set(re.findall(r"<!-- /generated:([\w-]+) -->", text))
    problems += [f"block '{name}' is not closed" for name in sorted(opened ^ closed)]
    stripped = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks may show shell variables
    stripped = re.sub(r"`[^`\n]*`", "", stripped)
    problems += [f"placeholder {word!r} in the text" for word in sorted(set(_PLACEHOLDER.findall(stripped)))]
    return problems


def publish(results: Path, published: Path, root: Path, tier: str = "") -> list[str]:
    """Copy a finished study's results into ``published`` (a ``tier`` such as ``cpu``: into
    ``published/<tier>``) and rewrite the blocks of every document of :data:`DOCUMENTS` under ``root``
    (the repository) from every published study there. Returns the files written."""
    top = Path(published)
    results, published = Path(results), top / tier if tier else top
    missing = [name for name in PUBLISHED_FILES if not (results / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{results}: missing {', '.join(missing)} — run the study first (make study)")
    written = []
    for name in PUBLISHED_FILES:
        (published / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(results / name, published / name)
        written.append(str(published / name))
    figures = published / "figures"
    if figures.exists():
        shutil.rmtree(figures)
    figures.mkdir(parents=True)
    for png in sorted((results / "figures").glob("*.png")):
        shutil.copyfile(png, figures / png.name)
        written.append(str(figures / png.name))
    made = published_blocks(top)
    for document in DOCUMENTS:
        path = Path(root) / document
        write_text(path, render(path.read_text(encoding="utf-8"), made))
        written.append(str(path))
    return written
