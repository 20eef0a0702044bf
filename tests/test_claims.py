"""The claims registry and its one verdict rule, on tables whose answer is computed here independently."""

import math

import numpy as np
import pandas as pd
import pytest

from bench_powerprop.cells import CELL_COLUMNS
from bench_powerprop.pipelines import PIPELINES
from bench_powerprop.reporting import claims as c
from bench_powerprop.reporting.adaptive import TRACE_COLUMNS
from bench_powerprop.reporting.pages import html_page
from bench_powerprop.reporting.reports import REPORTS
from bench_powerprop.training.progress import GRADIENT_NORM_COLUMNS

#: kinds other experiments will add; a claim naming any other kind absent from PIPELINES is a typo
PLANNED_KINDS: set[str] = set()  # kinds a claim may name before their pipeline exists


def claim(**changes) -> c.Claim:
    fields = {"key": "k", "text": "α > 1 beats α = 1", "source": "a paper", "kind": "toy", "metric": "score",
              "treatment": {"alpha": {">": 1}}, "baseline": {"alpha": 1}}
    return c.Claim(**{**fields, **changes})


def table(treatment: dict[int, list[float]], baseline: dict[int, list[float]], **extra) -> pd.DataFrame:
    """Rows of a toy table: {seed: values} per group (several rows per seed allowed)."""
    rows = [{"alpha": alpha, "seed": seed, "score": value, "status": "ok", **extra}
            for alpha, groups in ((2.0, treatment), (1.0, baseline)) for seed, values in groups.items() for value in values]
    return pd.DataFrame(rows)


def welch(treatment: list[float], baseline: list[float]) -> tuple[float, float]:
    t, b = np.array(treatment), np.array(baseline)
    return t.mean() - b.mean(), math.sqrt(t.var(ddof=1) / len(t) + b.var(ddof=1) / len(b))


@pytest.mark.parametrize(("effect", "se", "n", "expected"), [
    (2.1, 1.0, 3, c.REPRODUCES),
    (1.9, 1.0, 3, c.INCONCLUSIVE),
    (-1.9, 1.0, 3, c.INCONCLUSIVE),
    (-2.1, 1.0, 3, c.DOES_NOT_REPRODUCE),
    (50.0, 1.0, 1, c.INCONCLUSIVE),  # one seed: never decided
    (0.1, 0.0, 2, c.REPRODUCES),  # no spread at all: any effect in the claimed direction is beyond 2 SE
])
def test_verdict_rule(effect, se, n, expected):
    assert c.verdict(effect, se, n, 3) == expected
    assert c.verdict(effect, se, 3, n) == expected


def test_effect_and_standard_error_over_per_seed_means():
    # two rows per seed in each group: a seed's value is the mean of its rows
    rows = table({0: [0.9, 0.7], 1: [0.6, 0.6], 2: [0.8, 1.0]}, {0: [0.5, 0.3], 1: [0.4, 0.4], 2: [0.2, 0.2], 3: [0.3, 0.5]})
    effect, se = welch([0.8, 0.6, 0.9], [0.4, 0.4, 0.2, 0.4])
    result = c.judge(claim(), rows)
    assert result["effect"] == pytest.approx(100 * effect) and result["se"] == pytest.approx(100 * se)
    assert (result["n_treatment"], result["n_baseline"]) == (3, 4)
    assert effect > 2 * se and result["verdict"] == c.REPRODUCES
    assert result["treatment"] == f"{100 * np.mean([0.8, 0.6, 0.9]):.2f} ± {100 * np.std([0.8, 0.6, 0.9], ddof=1):.2f} (n=3)"


def test_lower_is_better_flips_the_sign_and_diverged_runs_are_left_out():
    rows = table({0: [0.1], 1: [0.2], 2: [0.15]}, {0: [0.5], 1: [0.6], 2: [0.55]})
    rows = pd.concat([rows, pd.DataFrame([{"alpha": 2.0, "seed": 3, "score": 99.0, "status": "diverged"}])])
    result = c.judge(claim(higher_is_better=False, scale=1.0), rows)
    effect, se = welch([0.5, 0.6, 0.55], [0.1, 0.2, 0.15])  # baseline − treatment
    assert result["effect"] == pytest.approx(effect) and result["se"] == pytest.approx(se)
    assert result["n_treatment"] == 3 and result["verdict"] == c.REPRODUCES


def test_a_clear_effect_the_other_way_does_not_reproduce():
    rows = table({0: [0.1], 1: [0.12]}, {0: [0.9], 1: [0.92]})
    assert c.judge(claim(), rows)["verdict"] == c.DOES_NOT_REPRODUCE


def test_selectors_equality_lists_and_operators():
    rows = pd.DataFrame({"method": ["dense", "gmp", "rigl", "set"], "sparsity": [0.0, 0.8, 0.9, 0.95]})
    pick = lambda where: list(c.select(rows, where, claim())["method"])  # noqa: E731
    assert pick({"method": "gmp"}) == ["gmp"]
    assert pick({"method": ["rigl", "set"]}) == ["rigl", "set"]
    assert pick({"method": {"!=": "dense"}, "sparsity": {">=": 0.9}}) == ["rigl", "set"]
    assert pick({"sparsity": {">": 0.5, "<": 0.95}}) == ["gmp", "rigl"]
    with pytest.raises(ValueError, match="unknown selector operator"):
        pick({"sparsity": {"~": 1}})
    with pytest.raises(KeyError, match=r"claim 'k'.*no column"):
        pick({"alpha": 1})


def test_describe_spells_out_the_selectors():
    selectors = {"alpha": {">": 1}, "method": {"!=": "dense"}, "sparsity": {">=": 0.9}}
    assert c.describe(selectors) == "alpha > 1, method ≠ dense, sparsity ≥ 0.9"
    assert c.describe({"variant": ["a", "b"], "seed": 0}) == "variant ∈ {a, b}, seed = 0"


def test_evaluate_one_row_per_testing_experiment_and_not_run_otherwise():
    tables = {"one": table({0: [0.9], 1: [0.8]}, {0: [0.5], 1: [0.4]}), "two": table({0: [0.5]}, {0: [0.5]}),
              "empty": table({}, {0: [0.5], 1: [0.6]})}
    claims = [claim(), claim(key="absent", kind="nowhere")]
    result = c.evaluate(claims, {"one": "toy", "two": "toy", "empty": "toy", "other": "elsewhere"},
                        lambda experiment, kind, role: tables[experiment])
    assert list(result["experiment"]) == ["one", "two", "empty", "—"]
    assert list(result["verdict"]) == [c.REPRODUCES, c.INCONCLUSIVE, c.NOT_RUN, c.NOT_RUN]
    assert "no active experiment of kind 'nowhere'" in result["note"].iloc[-1]
    assert "no rows match" in result["note"].iloc[2]
    assert list(result.columns) == c.CLAIM_COLUMNS


def test_claims_page_prints_the_rule_and_one_row_per_result():
    tables = {"one": table({0: [0.9], 1: [0.8]}, {0: [0.5], 1: [0.4]})}
    result = c.evaluate([claim(metric_text="fraction of |θ| < ε"), claim(key="x", kind="nowhere")], {"one": "toy"},
                        lambda experiment, kind, role: tables[experiment])
    markdown = c.page_markdown(result)
    assert c.VERDICT_RULE in markdown
    page = html_page(markdown, "claims")
    assert page.count("<tr>") == 1 + len(result)  # the header and one row each: the pipes in |θ| do not split cells
    assert "fraction of |θ| &lt; ε" in page
    assert c.overview_html(result).count("<tr>") == 1 + len(result)


def test_every_claim_names_a_known_kind_table_and_columns():
    assert len({claim.key for claim in c.CLAIMS}) == len(c.CLAIMS)
    for entry in c.CLAIMS:
        if entry.kind not in PIPELINES:
            assert entry.kind in PLANNED_KINDS, f"{entry.key}: unknown kind {entry.kind!r}"
            continue
        assert entry.table in PIPELINES[entry.kind].tables, entry.key
        norms = [*CELL_COLUMNS, "status", *GRADIENT_NORM_COLUMNS]
        columns = {"runs": REPORTS[entry.kind].columns, "trace": TRACE_COLUMNS, "norms": norms}  # the tables claims read
        assert entry.table in columns, f"{entry.key}: table {entry.table!r} has no declared columns"
        named = {*entry.where, *entry.treatment, *entry.baseline, entry.metric, entry.unit}
        assert named <= set(columns[entry.table]), entry.key
