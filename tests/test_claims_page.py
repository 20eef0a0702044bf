"""The claims page as a reader sees it: written by ``write_claims`` from a constructed experiment (manifest, tidy table,
training logs) and opened in headless Chromium at 1,400 px, the width issue 31 names."""


import numpy as np
import pandas as pd
import pytest

from bench_powerprop.io import write_json_atomic
from bench_powerprop.pipelines import PIPELINES
from bench_powerprop.reporting import claims as c
from bench_powerprop.reporting.claim_registry import CLAIMS

from chromium import Browser, chromium_or_skip

pytestmark = pytest.mark.browser

WIDTH = 1400
#: every element whose box ends right of the window, and the page's scroll width
OVERFLOW = """(() => { const out = [];
  for (const element of document.querySelectorAll('table, th, td, img, p, li, blockquote, h1, h2, h3')) {
    const box = element.getBoundingClientRect();
    if (box.right > window.innerWidth + 1) out.push(element.tagName + ' ' + element.textContent.slice(0, 60));
  }
  return {scroll: document.documentElement.scrollWidth, out: out}; })()"""
VERDICT_CELLS = """[...document.querySelectorAll('table')[0].querySelectorAll('tr')].map(row => {
  const cells = row.querySelectorAll('td, th'); const box = cells[3].getBoundingClientRect();
  return [cells[3].textContent.trim(), box.left >= 0 && box.right <= window.innerWidth]; })"""


@pytest.fixture(scope="module")
def chromium():
    return chromium_or_skip()


def experiment(tmp_path):
    """A one-shot experiment of 5 seeds × 6 α × 4 pruning levels, its manifest and every cell's training log."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "oneshot_digits"
    cells, rows = [], []
    for seed in range(5):
        for alpha in (1.0, 1.25, 1.5, 2.0, 3.0, 4.0):
            run_dir = folder / "runs" / f"a{alpha}_s{seed}"
            run_dir.mkdir(parents=True)
            pd.DataFrame({"step": range(0, 200, 10), "loss": np.linspace(1.0, 0.1 * alpha, 20)}).to_csv(
                run_dir / "train_log.csv", index=False)
            cell = {"method": "dense", "variant": "default", "alpha": alpha, "sparsity": 0.0, "seed": seed, "level": None}
            cells.append({**cell, "run_dir": str(run_dir)})
            for target in (0.0, 0.9, 0.95, 0.98):
                accuracy = 0.9 + 0.01 * alpha * target + rng.normal(0, 0.003)
                rows.append({**cell, "experiment": "oneshot_digits", "evaluation": "oneshot", "target_sparsity": target,
                             "test_accuracy": accuracy, "val_accuracy": accuracy, "status": "ok",
                             "near_zero_fraction": 0.1 + 0.01 * alpha, "near_zero_first_layer": 0.1,
                             "near_zero_last_layer": 0.1, "bimodality": 0.4, "init_fingerprint": f"i{seed}",
                             "batch_fingerprint": f"b{seed}"})
    table = folder / PIPELINES["oneshot"].tables["runs"]
    table.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(table, index=False)
    write_json_atomic(folder / "manifest.json", {"experiment": "oneshot_digits", "kind": "oneshot", "data": "digits",
                                                 "model": {"name": "mlp", "hidden": [300, 100]}, "cells": cells})
    return folder / "manifest.json"


def test_the_claims_page_is_fully_visible_at_1400_px(tmp_path, chromium):
    out = tmp_path / "reproduction"
    out.mkdir()
    c.write_claims([experiment(tmp_path)], out / "claims.csv", out / "overview.html", out / "claims.md",
                   out / "claims.html", out / "claims_forest.png", CLAIMS)
    table = pd.read_csv(out / "claims.csv")
    judged = table[table["experiment"] == "oneshot_digits"]
    assert set(judged["setting"]) == {"digits / mlp_300_100"}
    assert judged["converged"].astype(str).str.startswith("no").any()  # α = 4's loss still falls by a fifth at the end
    with Browser(chromium, width=WIDTH, height=900) as browser:
        page = browser.open((out / "claims.html").as_uri())
        page.wait_for("document.querySelector('table') !== null")
        layout = page.evaluate(OVERFLOW)
        assert layout["out"] == [] and layout["scroll"] <= WIDTH
        verdicts = page.evaluate(VERDICT_CELLS)
        cut = page.evaluate(HEADERS_CUT_INSIDE_A_WORD)
    assert verdicts[0] == ["verdict", True] and len(verdicts) > 5 and all(visible for _, visible in verdicts)
    assert cut == []  # "clai|m", "stabilit|y" under overflow-wrap: anywhere
    assert "— —" not in (out / "claims.md").read_text()  # a claim not run: one dash, not the effect's and the interval's


#: the one-word headers of every table drawn on more than one line (a Range has one client rect per line it spans)
HEADERS_CUT_INSIDE_A_WORD = """[...document.querySelectorAll('th')].filter(th => !/\\s/.test(th.textContent.trim()) && (() => {
    const range = document.createRange(); range.selectNodeContents(th); return range.getClientRects().length > 1; })())
  .map(th => th.textContent)"""
