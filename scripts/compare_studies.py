"""Compare finished studies: headline metrics side by side and every claim whose verdict differs.

    python scripts/compare_studies.py seed0=results/metrics.csv seed1=studies/seed1/results/metrics.csv

Each argument is LABEL=PATH to a metrics.csv. Prints two Markdown tables: PSNR, spectrum_distance and
c2st of every method each study has (and the toy's H), then the claims (affsr.report.claims, computed from each
study's metrics) whose verdicts are not the same in all studies. This is how the README's robustness
section was made.
"""

from __future__ import annotations

import sys

import pandas as pd

from affsr.report.claims import claims_table
from affsr.report.tables import markdown_table

HEADLINE = ("psnr", "spectrum_distance", "c2st")


def main(argv: list[str]) -> None:
    if not argv or any("=" not in a for a in argv):
        sys.exit(__doc__)
    studies = {label: pd.read_csv(path) for label, path in (a.split("=", 1) for a in argv)}
    rows = []
    for label, metrics in studies.items():
        images = metrics[metrics["metric"].isin(HEADLINE) & (metrics["dataset"] != "toy")]
        toy = metrics[(metrics["dataset"] == "toy") & (metrics["metric"] == "cross_entropy")]
        for frame in (images, toy):
            for r in frame.itertuples(index=False):
                rows.append({"data set": r.dataset, "method": r.method, "metric": r.metric, label: r.value})
    table = pd.DataFrame(rows).groupby(["data set", "method", "metric"], sort=False).first().reset_index()
    table = table.dropna(subset=list(studies))
    for label in studies:
        table[label] = table[label].map(lambda v: f"{v:.3g}")
    print(markdown_table(table))
    print()
    verdicts = None
    for label, metrics in studies.items():
        claims = claims_table(metrics)
        # the measurement text quotes values (real-vs-real floor, method counts): compare without them
        what = claims["measurement"].str.replace(r"(?<![A-Za-z])[-+]?\d[\d.e+-]*", "…", regex=True)
        claims = claims.assign(key=claims["claim"] + " · " + claims["data set"] + " · " + what)
        part = claims.set_index("key")[["verdict", "margin"]].add_prefix(f"{label} ")
        verdicts = part if verdicts is None else verdicts.join(part, how="inner")
    columns = [f"{label} verdict" for label in studies]
    changed = verdicts[verdicts[columns].nunique(axis=1) > 1]
    print(f"{len(changed)} of {len(verdicts)} claims change verdict")
    if len(changed):
        print(markdown_table(changed.reset_index()))


if __name__ == "__main__":
    main(sys.argv[1:])
