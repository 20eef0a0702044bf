"""README.md's default-run block is what ``python -m bench_powerprop readme`` writes from the committed outputs."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench_powerprop.cli import main
from bench_powerprop.reporting import readme

ROOT = Path(__file__).resolve().parent.parent


def test_readme_block_is_generated_from_the_committed_reference_outputs():
    up_to_date, message = readme.regenerate(readme.README, readme.REFERENCE_DIR, check=True)
    assert up_to_date, message


def test_a_hand_edited_number_fails_the_check(tmp_path):
    reference = tmp_path / "default_run"
    shutil.copytree(readme.REFERENCE_DIR, reference)
    table = (reference / readme.TABLE_NAME).read_text()
    row = table.index("| P2 |")
    end = table.index("\n", row)
    (reference / readme.TABLE_NAME).write_text(table[:row] + table[row:end].replace("[", "[9", 1) + table[end:])
    up_to_date, message = readme.regenerate(ROOT / "README.md", reference, check=True)
    assert not up_to_date and "| P2 |" in message and "line" in message and readme.TABLE_NAME in message
    copy = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text()
    copy.write_text(text.replace("| reproduces (", "| reproduces (9", 1))
    up_to_date, message = readme.regenerate(copy, readme.REFERENCE_DIR, check=True)
    assert not up_to_date and "README.md" in message


def _claims() -> pd.DataFrame:
    return pd.read_csv(readme.REFERENCE_DIR / "claims.csv")


def test_counts_and_rows_come_from_the_claims_table():
    claims = _claims()
    text = readme.table_document(claims)
    pairs = claims[claims["section"] != readme.HARNESS_SECTION].drop_duplicates(subset=["key", "experiment"])
    reproduces = int((pairs["claim_verdict"] == "reproduces").sum())
    assert f"**{reproduces} reproduce," in text and f"**{reproduces} reproduce," in readme.block(claims)
    assert f"| reproduces ({reproduces}) |" in readme.block(claims)
    assert sum(line.startswith("| ") for line in text.splitlines()) == len(claims) + 1  # the header, then a row each
    # one changed effect changes its row, and only its row
    changed = claims.copy()
    changed.loc[0, "effect"] = 7.25
    before, after = text.splitlines(), readme.table_document(changed).splitlines()
    assert [i for i, (a, b) in enumerate(zip(before, after)) if a != b] == [before.index(readme.table_row(
        claims.fillna({"part": "", "note": "", "experiment": ""}).iloc[0].to_dict()))]


@pytest.mark.parametrize(("test", "effect", "low", "high", "margin", "expected"), [
    ("difference", 18.4, 11.1, 25.7, 0.0, "+2.5"),  # (effect − 0) / half-width
    ("difference", -0.76, -1.91, 0.393, 1.0, "+0.2"),  # non-inferiority: (effect + m) / half-width
    ("equivalence", -0.88, -1.13, -0.633, 1.0, "+0.5"),  # (m − |effect|) / half-width
    ("difference", 0.0, 0.0, 0.0, 0.0, "—"),  # no spread: no ratio
])
def test_power_column(test, effect, low, high, margin, expected):
    row = {"test": test, "effect": effect, "low": low, "high": high, "margin": margin}
    assert readme.power(row) == expected.replace("-", readme.MINUS)
    if expected != "—":
        half = (high - low) / 2
        distance = margin - abs(effect) if test == "equivalence" else effect + margin
        assert math.isclose(float(expected), round(distance / half, 1))


def test_update_reference_copies_a_run_and_rewrites_the_block(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results" / "reproduction"
    results.mkdir(parents=True)
    claims = _claims()
    claims.loc[claims["key"] == "P2", "effect"] = 12.5
    claims.to_csv(results / "claims.csv", index=False)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    reference = tmp_path / "docs" / "default_run"
    monkeypatch.setattr(readme, "REFERENCE_DIR", reference)
    monkeypatch.chdir(tmp_path)
    assert main(["readme", "--check", "--readme", "README.md"]) == 2  # no committed reference here
    assert f"{reference}/claims.csv: no claims table" in capsys.readouterr().err
    assert main(["readme", "--results", "results", "--update-reference", "--readme", "README.md"]) == 0
    assert (reference / "claims.csv").read_text() == (results / "claims.csv").read_text()
    assert "+12.5 [" in (reference / readme.TABLE_NAME).read_text()
    assert main(["readme", "--check", "--readme", "README.md"]) == 0
    assert (readme.REPO / "docs" / "default_run" / readme.TABLE_NAME).read_text() != \
        (reference / readme.TABLE_NAME).read_text()  # the repository's is untouched


def test_missing_markers_are_named(tmp_path):
    (tmp_path / "README.md").write_text("# no block\n")
    with pytest.raises(readme.ReadmeError, match="no block between"):
        readme.regenerate(tmp_path / "README.md", readme.REFERENCE_DIR, check=True)


def test_harness_checks_are_listed_apart_from_the_sources_claims():
    from bench_powerprop.reporting.claims import HARNESS_SECTION

    assert readme.HARNESS_SECTION == HARNESS_SECTION
    claims = _claims()
    checks = set(claims.loc[claims["section"] == HARNESS_SECTION, "key"])
    assert checks, "the reference run has a harness sanity check (L5)"
    verdict_rows = [line for line in readme.verdict_table(claims).splitlines() if not line.startswith("| harness")]
    assert not any(f" {key}," in line or f" {key} |" in line for key in checks for line in verdict_rows)
