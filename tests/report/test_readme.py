"""The README and the result pages quote the published results (docs/results/) exactly, and have no
placeholders."""

from pathlib import Path

import pytest

from affsr.report.readme_blocks import DOCUMENTS, check_readme, claims_overview, published_blocks, render

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "results"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_tables_agree_with_the_published_results(document):
    assert check_readme((ROOT / document).read_text(encoding="utf-8"), published_blocks(PUBLISHED)) == []


@pytest.mark.parametrize("document, names", [
    ("README.md", ("claims-tally", "claims-overview")),
    ("docs/results.md", ("claims", "toy-table1", "draws", "metrics-grass", "metrics-faces", "metrics-natural")),
])
def test_the_generated_tables_are_where_readers_look(document, names):
    text = (ROOT / document).read_text(encoding="utf-8")
    for name in names:
        assert f"<!-- generated:{name} -->" in text


def test_the_claims_overview_counts_each_claims_verdicts():
    import pandas as pd

    from affsr.report.claims import claims_table

    def tidy(values: dict) -> pd.DataFrame:
        return pd.DataFrame([{"dataset": d, "method": m, "metric": k, "value": v} for (d, m, k), v in values.items()])

    demo = claims_table(tidy({("grass", "affmse", "psnr"): 19.3, ("grass", "mse", "psnr"): 19.1,
                              ("grass", "affmse", "ssim"): 0.50, ("grass", "mse", "ssim"): 0.55,
                              ("faces", "affmse", "lr_mse"): 1e-15}))
    cpu = claims_table(tidy({("grass", "affmse", "psnr"): 19.0, ("grass", "mse", "psnr"): 19.1,
                             ("grass", "affmse", "ssim"): 0.40, ("grass", "mse", "ssim"): 0.55}))
    lines = claims_overview({"demo": demo, "cpu": cpu}).splitlines()
    assert lines[0] == "| claim | paper | grass | faces |"  # data sets in the order the claims met them
    assert "| AffMSE ≥ MSE | §5.2, Table 2 | 1/2 ✓ · cpu ✗ |  |" in lines
    assert "| the projection is exact | §3.1, Table 2 |  | ✓ |" in lines


@pytest.mark.parametrize("text", ["| data | DRAWS_ROWS |", "numbers: TODO", "see XXX here"])
def test_a_placeholder_is_caught(text):
    assert any("placeholder" in p for p in check_readme(text, {}))


def test_code_and_paths_are_not_placeholders():
    text = "run `OPENBLAS_CORETYPE=x make` and read docs/RESULTS_NOTE.md\n```\nexport MY_VAR=1\n```\n"
    assert check_readme(text, {}) == []


def test_an_unknown_or_unclosed_block_is_caught():
    assert check_readme("<!-- generated:nope -->\nx\n<!-- /generated:nope -->", {}) == ["block 'nope' has no generator"]
    assert check_readme("<!-- generated:open -->\nx\n", {}) == ["block 'open' is not closed"]
    with pytest.raises(ValueError, match="no generator"):
        render("<!-- generated:nope -->\nx\n<!-- /generated:nope -->", {})


def _fake_results(folder: Path, psnr: float) -> Path:
    (folder / "toy").mkdir(parents=True)
    (folder / "figures").mkdir()
    (folder / "metrics.csv").write_text(f"dataset,method,metric,value\ngrass,mse,psnr,{psnr}\n")
    (folder / "summary.md").write_text("summary\n")
    (folder / "claims.md").write_text(f"Each verdict: {psnr}\n\n| claim | paper | data set | verdict |\n|---|---|---|---|\n"
                                      f"| {psnr} | x | grass | reproduced |\n")
    (folder / "toy" / "table1.md").write_text("| t |\n|---|\n| 1 |\n")
    (folder / "figures" / "metrics.png").write_bytes(b"\x89PNG")
    return folder


def test_a_tier_is_published_beside_the_default_study(tmp_path):
    """`affsr publish --tier cpu`: files into docs/results/cpu, README blocks `cpu-…` from them, the
    default study's blocks still from docs/results."""
    from affsr.report.readme_blocks import publish

    root = tmp_path / "repo"
    docs = root / "docs" / "results"
    docs.mkdir(parents=True)
    for document in DOCUMENTS[1:]:
        (root / document).write_text("no tables\n")
    readme = root / "README.md"
    readme.write_text("<!-- generated:claims -->\n<!-- /generated:claims -->\n"
                      "<!-- generated:cpu-claims -->\n<!-- /generated:cpu-claims -->\n")
    with pytest.raises(ValueError, match="cpu-claims"):  # no cpu tier published yet
        publish(_fake_results(tmp_path / "demo", 18.5), docs, root)
    readme.write_text("<!-- generated:claims -->\n<!-- /generated:claims -->\n")
    publish(tmp_path / "demo", docs, root)
    readme.write_text(readme.read_text() + "<!-- generated:cpu-claims -->\n<!-- /generated:cpu-claims -->\n")
    publish(_fake_results(tmp_path / "cpu", 21.25), docs, root, tier="cpu")
    assert (docs / "cpu" / "metrics.csv").read_text().endswith("21.25\n")
    assert (docs / "cpu" / "figures" / "metrics.png").is_file() and (docs / "figures" / "metrics.png").is_file()
    text = readme.read_text()
    assert "| 18.5 | x |" in text.split("generated:cpu-claims")[0] and "| 21.25 | x |" in text.split("generated:cpu-claims")[1]
    assert check_readme(text, published_blocks(docs)) == []


def test_each_table_of_claims_md_stays_its_own_table_in_the_block(tmp_path):
    """claims.md with other tiers holds two tables (across tiers, then this study's): the `claims` block keeps
    them apart, or Markdown would read the second header as a row of the first."""
    from affsr.report.readme_blocks import blocks

    published = _fake_results(tmp_path / "demo", 18.5)
    (published / "claims.md").write_text("# claims\n\n## Across tiers\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
                                         "## demo\n\n| c | d | e |\n|---|---|---|\n| 3 | 4 | 5 |\n")
    assert blocks(published)["claims"] == "| a | b |\n|---|---|\n| 1 | 2 |\n\n| c | d | e |\n|---|---|---|\n| 3 | 4 | 5 |"
