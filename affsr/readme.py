"""The published results and the README tables made from them (no number in a README table is typed).

The workflow owns ``results/``: nothing there is committed, so a fresh clone reruns every rule. What the
README shows is a *published* copy, ``docs/results/`` (committed), made by ``affsr publish`` (``make
publish``) from a finished study: the metrics, the claims, the toy table and the figures. The README's
tables sit between markers

    <!-- generated:NAME -->
    ...
    <!-- /generated:NAME -->

and are rewritten from the published files by the same command; :func:`check_readme` (run by the tests)
fails when a block disagrees with the files it quotes, when a marker has no block, or when a
placeholder (an ALL_CAPS_WORD standing alone, ``TODO``, ``XXX``) is left in the text.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd

from affsr.files import write_text

#: Files copied from results/ to the published folder (figures: every PNG).
PUBLISHED_FILES = ("metrics.csv", "summary.md", "claims.md", "toy/table1.md")
#: Columns of the per-domain tables in the README, in order, with their formats.
README_METRICS = {"psnr": "{:.2f}", "ssim": "{:.3f}", "lr_mse": "{:.1e}", "spectrum_distance": "{:.2f}",
                  "swd": "{:.0f}", "c2st": "{:.2f}", "cross_entropy": "{:.2f}"}

_BLOCK = re.compile(r"<!-- generated:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /generated:(?P=name) -->", re.S)
_PLACEHOLDER = re.compile(r"(?<![\w`/.-])(?:[A-Z][A-Z0-9]*_[A-Z0-9_]+|TODO|XXX)(?![\w`/.-])")


def _markdown(frame: pd.DataFrame) -> str:
    from affsr.tables import markdown_table

    return markdown_table(frame)


def _table_lines(text: str) -> str:
    """The Markdown table of a results file (its lines that start with ``|``)."""
    return "\n".join(line for line in text.splitlines() if line.startswith("|"))


def domain_table(metrics: pd.DataFrame, dataset: str) -> str:
    """One data set's methods × the README's metrics, formatted; '–' where a metric is absent."""
    rows = metrics[metrics["dataset"] == dataset]
    wide = rows.pivot_table(index="method", columns="metric", values="value", aggfunc="first", sort=False)
    columns = [c for c in README_METRICS if c in wide.columns]
    out = pd.DataFrame({"method": wide.index})
    for c in columns:
        out[c] = [("–" if pd.isna(v) else README_METRICS[c].format(v)) for v in wide[c]]
    return _markdown(out)


def draws_table(metrics: pd.DataFrame) -> str:
    """Diversity and worst-draw consistency of every stochastic run, per data set."""
    rows = []
    for (dataset, method), sub in metrics.groupby(["dataset", "method"], sort=False):
        values = dict(zip(sub["metric"], sub["value"]))
        if "diversity" in values:
            rows.append({"data set": dataset, "method": method, "diversity": f"{values['diversity']:.3f}",
                         "lr_mse_draws": f"{values['lr_mse_draws']:.1e}",
                         "PSNR / SSIM (first draw)": f"{values['psnr']:.2f} / {values['ssim']:.3f}"})
    return _markdown(pd.DataFrame(rows, columns=["data set", "method", "diversity", "lr_mse_draws",
                                                 "PSNR / SSIM (first draw)"]))


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
    for tier in sorted(p for p in root.iterdir() if p.is_dir() and (p / "metrics.csv").is_file()):
        made.update({f"{tier.name}-{k}": v for k, v in blocks(tier).items()})
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


def publish(results: Path, published: Path, readme: Path, tier: str = "") -> list[str]:
    """Copy a finished study's results into ``published`` (a ``tier`` such as ``cpu``: into
    ``published/<tier>``) and rewrite ``readme``'s blocks from every published study there. Returns the
    files written."""
    root = Path(published)
    results, published = Path(results), root / tier if tier else root
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
    readme = Path(readme)
    write_text(readme, render(readme.read_text(encoding="utf-8"), published_blocks(root)))
    written.append(str(readme))
    return written
