"""The README quotes the published results (docs/results/) exactly, and has no placeholders."""

from pathlib import Path

import pytest

from affsr.readme import blocks, check_readme, render

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PUBLISHED = ROOT / "docs" / "results"


def test_readme_tables_agree_with_the_published_results():
    assert check_readme(README.read_text(encoding="utf-8"), blocks(PUBLISHED)) == []


def test_readme_has_the_generated_tables():
    text = README.read_text(encoding="utf-8")
    for name in ("claims", "toy-table1", "draws", "metrics-grass", "metrics-faces", "metrics-natural"):
        assert f"<!-- generated:{name} -->" in text


def test_every_image_the_readme_shows_exists():
    import re

    text = README.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images, "the README shows figures"
    assert [p for p in images if not (ROOT / p).is_file()] == []


def test_a_stale_block_is_caught():
    made = {"t": "| a |\n|---|\n| 1 |"}
    text = render("x\n<!-- generated:t -->\nold\n<!-- /generated:t -->\ny\n", made)
    assert check_readme(text, made) == []
    stale = text.replace("| 1 |", "| 2 |")
    assert check_readme(stale, made) == ["block 't' disagrees with the published results (run `make publish`)"]


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
