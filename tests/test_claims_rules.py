"""The stricter claims rule of issue 28 and the verdict stability of issue 29, on constructed tables whose answer is
computed here independently: by hand, or by calling scipy directly (never from the code under test's own output)."""

import math
from itertools import product

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench_powerprop.reporting import claims as c
from bench_powerprop.reporting import convergence as conv
from bench_powerprop.reporting import stability
from bench_powerprop.reporting import statistics as st
from bench_powerprop.reporting.claim_registry import CLAIMS


def claim(**changes) -> c.Claim:
    fields = {"key": "k", "text": "α > 1 beats α = 1", "source": "a paper", "kind": "toy", "metric": "score",
              "treatment": {"alpha": {">": 1}}, "baseline": {"alpha": 1}, "scale": 1.0}
    return c.Claim(**{**fields, **changes})


def rows_of(groups: dict[float, dict[int, float]], column: str = "alpha", **extra) -> pd.DataFrame:
    """{column value: {seed: score}}, one row per seed and value, fingerprints shared per seed."""
    return pd.DataFrame([{column: value, "seed": seed, "score": score, "status": "ok", "init_fingerprint": f"i{seed}",
                          "batch_fingerprint": f"b{seed}", **extra}
                         for value, seeds in groups.items() for seed, score in seeds.items()])


def deciding(records: list[dict]) -> list[dict]:
    return [record for record in records if record["role"] == c.DECIDES]


# -- (1) insufficient groups, diverged runs as outcomes -----------------------------------------------
def test_a_diverged_seed_without_a_value_makes_its_group_insufficient_or_counts_at_the_declared_worst_case():
    rows = rows_of({2.0: {0: 0.9, 1: 0.92, 2: 0.91}, 1.0: {0: 0.5, 1: 0.52, 2: 0.5}})
    rows.loc[(rows["alpha"] == 2.0) & (rows["seed"] == 2), ["score", "status"]] = [math.nan, "diverged"]
    left_out = c.judge(claim(), rows)[0]
    assert left_out["verdict"] == left_out["claim_verdict"] == st.INSUFFICIENT
    assert left_out["diverged"] == "1/3 / 0/3" and left_out["asked"] == "3/3"
    counted = c.judge(claim(diverged_as=0.1), rows)[0]
    differences = [0.9 - 0.5, 0.92 - 0.52, 0.1 - 0.5]  # the diverged seed at chance
    assert counted["effect"] == pytest.approx(np.mean(differences)) and counted["n_treatment"] == 3
    assert counted["verdict"] == st.INCONCLUSIVE  # −0.4 in one seed: the interval reaches below zero


# -- (2) zero spread decides ----------------------------------------------------------------------------
def test_a_constant_zero_trend_does_not_reproduce_and_a_constant_effect_decides():
    flat = pd.concat([rows_of({alpha: dict.fromkeys(range(5), 0.3)}) for alpha in (1.0, 1.5, 2.0, 3.0)])
    trend = c.judge(claim(trend="alpha", treatment={}, baseline={}, min_effect=0.5), flat)[0]
    assert (trend["effect"], trend["low"], trend["high"]) == (0.0, 0.0, 0.0)  # ρ = 0 in every seed
    assert trend["verdict"] == st.DOES_NOT_REPRODUCE
    same = rows_of({2.0: {0: 0.7, 1: 0.8, 2: 0.9}, 1.0: {0: 0.6, 1: 0.7, 2: 0.8}})  # +0.1 in every seed
    assert c.judge(claim(min_effect=0.05), same)[0]["verdict"] == st.REPRODUCES
    assert c.judge(claim(min_effect=0.2), same)[0]["verdict"] == st.DOES_NOT_REPRODUCE
    tie = rows_of({2.0: {0: 0.7, 1: 0.8}, 1.0: {0: 0.7, 1: 0.8}})
    assert c.judge(claim(), tie)[0]["verdict"] == st.DOES_NOT_REPRODUCE  # no effect at all is not "beats"


# -- (3) the smallest effect of interest ---------------------------------------------------------------
@pytest.mark.parametrize(("min_effect", "verdict"), [(0.0, st.REPRODUCES), (0.045, st.INCONCLUSIVE),
                                                     (0.2, st.DOES_NOT_REPRODUCE)])
def test_reproduces_needs_the_interval_beyond_the_smallest_effect(min_effect, verdict):
    differences = [0.05, 0.07, 0.06, 0.04]
    rows = rows_of({2.0: {seed: 0.5 + d for seed, d in enumerate(differences)}, 1.0: dict.fromkeys(range(4), 0.5)})
    result = c.judge(claim(min_effect=min_effect), rows)[0]
    greater = stats.ttest_1samp(differences, popmean=min_effect, alternative="greater").pvalue
    less = stats.ttest_1samp(differences, popmean=min_effect, alternative="less").pvalue
    assert result["p_reproduces"] == pytest.approx(greater) and result["p_fails"] == pytest.approx(less)
    assert result["verdict"] == verdict
    assert (greater < 0.025, less < 0.025) == (verdict == st.REPRODUCES, verdict == st.DOES_NOT_REPRODUCE)


def test_at_least_as_good_is_non_inferiority_not_strictly_greater():
    # B is 0.2 pp below A in every seed ± noise: "A ≥ B" within a 1 pp margin holds; strictly ">" would not
    rows = rows_of({1.0: {0: 0.900, 1: 0.910, 2: 0.905}, 2.0: {0: 0.902, 1: 0.913, 2: 0.906}}, column="method_rank")
    ordering = claim(treatment={}, baseline={}, order=({"method_rank": 1.0}, {"method_rank": 2.0}))
    assert c.judge(ordering, rows)[0]["verdict"] != st.REPRODUCES
    assert c.judge(c.Claim(**{**ordering.__dict__, "margin": 0.01}), rows)[0]["verdict"] == st.REPRODUCES
    ranked = next(entry for entry in CLAIMS if entry.key == "L4")
    assert ranked.margin > 0


# -- (4) multiplicity: Holm, the level picked on validation --------------------------------------------
def test_holm_adjusted_p_values_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → monotone 0.02, 0.03, 0.06, 0.06
    assert st.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert st.holm([0.5, math.nan, 0.9]) == pytest.approx([1.0, math.nan, 1.0], nan_ok=True)  # k = 2: 1.0, 0.9 → 1.0
    assert st.holm([]) == []


def test_any_of_claims_are_holm_corrected():
    # three levels, each a paired effect whose one-sided p lies between 0.025/3 and 0.025: each alone reproduces,
    # after Holm none does
    differences = [0.02, 0.03, 0.04]
    p = stats.ttest_1samp(differences, 0.0, alternative="greater").pvalue
    assert 0.025 / 3 < p < 0.025  # Holm's smallest adjusted p is 3p > 0.025
    rows = pd.concat([rows_of({level: {seed: 0.5 + d for seed, d in enumerate(differences)}}, column="level")
                      for level in (1.0, 2.0, 3.0)] + [rows_of({0.0: dict.fromkeys(range(3), 0.5)}, column="level")])
    levels = claim(treatment={"level": {">=": 1}}, baseline={"level": 0}, split="level", combine="any")
    alone = c.judge(c.Claim(**{**levels.__dict__, "split": "", "treatment": {"level": 1.0}}), rows)[0]
    assert alone["verdict"] == st.REPRODUCES
    assert [r["verdict"] for r in c.judge(levels, rows)] == [st.INCONCLUSIVE] * 3


def test_down_to_some_level_picks_the_level_on_validation_and_judges_it_alone():
    seeds = range(4)
    rows = []
    for level, val, test in ((0, 0.90, 0.90), (1, 0.90, 0.90), (2, 0.90, 0.90), (3, 0.50, 0.90)):
        rows += [{"level": float(level), "seed": seed, "score": test + 0.001 * seed, "val": val + 0.001 * seed,
                  "status": "ok", "init_fingerprint": f"i{seed}", "batch_fingerprint": f"b{seed}"} for seed in seeds]
    tickets = claim(treatment={"level": {">=": 1}}, baseline={"level": 0}, split="level", test=st.EQUIVALENCE,
                    margin=0.01, pick_on="val")
    results = c.judge(tickets, pd.DataFrame(rows))
    # validation holds at levels 1 and 2 (level 3 drops to 0.5): level 2 is picked, although test holds at 3 too
    assert [(r["part"], r["role"]) for r in results] == [("level = 1", c.BESIDE), ("level = 2", c.DECIDES),
                                                         ("level = 3", c.BESIDE)]
    assert results[0]["claim_verdict"] == st.REPRODUCES and "level = 2 picked on val" in results[0]["note"]


# -- (5) pooled claims show their parts ------------------------------------------------------------------
def test_a_pooled_claim_shows_each_alpha_beside_the_pooled_verdict():
    rows = rows_of({1.25: {0: 0.50, 1: 0.52, 2: 0.49}, 5.0: {0: 0.70, 1: 0.74, 2: 0.72}, 1.0: {0: 0.5, 1: 0.5, 2: 0.5}})
    results = c.judge(claim(min_effect=0.005), rows)
    assert [(r["part"], r["role"]) for r in results] == [("", c.DECIDES), ("alpha = 1.25", c.BESIDE),
                                                         ("alpha = 5", c.BESIDE)]
    pooled = [np.mean([0.50, 0.70]) - 0.5, np.mean([0.52, 0.74]) - 0.5, np.mean([0.49, 0.72]) - 0.5]
    assert results[0]["effect"] == pytest.approx(np.mean(pooled))
    assert results[1]["effect"] == pytest.approx(np.mean([0.0, 0.02, -0.01]))
    assert results[1]["verdict"] != st.REPRODUCES and results[0]["claim_verdict"] == st.REPRODUCES  # beside: not in it
    frame = c.evaluate([claim(min_effect=0.005)], {"one": "toy"}, lambda *_: rows)
    verdicts = {1.25: results[1]["verdict"], 5.0: results[2]["verdict"]}
    marks = ", ".join(f"{value:g} {c.VERDICT_MARKS[verdict]}" for value, verdict in verdicts.items())
    assert f"* By alpha: {marks} — holds at 5 of 2" in c.page_markdown(frame)


# -- converged before judged ----------------------------------------------------------------------------
def test_loss_change_over_the_last_fifth_of_logged_steps_by_hand():
    steps = list(range(0, 100, 5))  # 20 rows; the window is steps ≥ 95 − 0.2·95 = 76: 80, 85, 90, 95
    losses = [1.0] * 16 + [0.40, 0.40, 0.30, 0.30]
    # least squares of y = log loss on x = 80…95: x − x̄ = −7.5, −2.5, 2.5, 7.5 (Σ = 125), Σ(x − x̄)·y = 10·log(0.3/0.4),
    # slope = 0.08·log(0.75); across the window's 15 steps: exp(1.2·log 0.75) − 1 = 0.75^1.2 − 1
    assert conv.loss_change(steps, losses) == pytest.approx(0.75 ** 1.2 - 1)
    assert conv.converged(conv.loss_change(steps, losses)) == 0.0  # a 29% drop: still learning
    assert conv.converged(conv.loss_change(steps, [1.0] * 16 + [0.40, 0.41, 0.39, 0.40])) == 1.0
    assert conv.loss_change(steps, [1.0] * 19 + [math.nan]) == math.inf
    assert math.isnan(conv.loss_change([0, 1], [1.0, 0.5]))  # too few rows in the window


def test_the_page_marks_verdicts_drawn_from_unconverged_groups(tmp_path):
    cells = []
    for alpha, drop in ((2.0, 0.5), (1.0, 0.0)):
        for seed in range(3):
            run_dir = tmp_path / f"a{alpha}s{seed}"
            run_dir.mkdir()
            pd.DataFrame({"step": range(0, 100, 5), "loss": [1.0] * 18 + [1.0 - drop] * 2}).to_csv(
                run_dir / "train_log.csv", index=False)
            cells.append({"alpha": alpha, "seed": seed, "method": "dense", "run_dir": str(run_dir)})
    flags = conv.cell_convergence(cells)
    assert list(flags[conv.CONVERGED]) == [0.0] * 3 + [1.0] * 3
    rows = conv.with_convergence(rows_of({2.0: {0: 0.9, 1: 0.91, 2: 0.92}, 1.0: {0: 0.5, 1: 0.5, 2: 0.52}},
                                         method="dense"), flags)
    result = c.judge(claim(), rows)[0]
    assert result["converged"] == "no (3 of 6 cells)"
    frame = c.evaluate([claim()], {"one": "toy"}, lambda *_: rows, {"one": "digits / mlp_300_100"})
    assert "reproduces ⚠ unconverged" in c.page_markdown(frame)


# -- verdict stability (issue 29) -------------------------------------------------------------------------
def verdict_by_scipy(differences: np.ndarray, boundary: float) -> str:
    """The difference rule written out on its own: a 95% t-interval (or, with no spread, the point) against the boundary."""
    if np.ptp(differences) == 0:
        return st.REPRODUCES if differences[0] > boundary else st.DOES_NOT_REPRODUCE
    low, high = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    return st.REPRODUCES if low > boundary else st.DOES_NOT_REPRODUCE if high < boundary else st.INCONCLUSIVE


def test_verdict_stability_is_the_exact_bootstrap_share_computed_independently():
    differences = np.array([0.30, 0.10, -0.05, 0.25])
    rows = rows_of({2.0: {seed: 0.5 + d for seed, d in enumerate(differences)}, 1.0: dict.fromkeys(range(4), 0.5)})
    frame = c.evaluate([claim(min_effect=0.0)], {"one": "toy"}, lambda *_: rows)
    observed = frame["claim_verdict"].iloc[0]
    # every one of the 4⁴ ordered draws, equally likely
    draws = [verdict_by_scipy(differences[list(draw)], 0.0) for draw in product(range(4), repeat=4)]
    assert observed == verdict_by_scipy(differences, 0.0) == st.INCONCLUSIVE
    assert frame["stability"].iloc[0] == pytest.approx(draws.count(observed) / len(draws))


def test_bootstrap_resamples_are_the_multisets_with_multinomial_weights():
    drawn = list(stability.resamples([0, 1, 2]))
    assert len(drawn) == math.comb(5, 3) and sum(weight for _, weight in drawn) == pytest.approx(1.0)
    assert dict(drawn)[(0, 1, 2)] == pytest.approx(6 / 27) and dict(drawn)[(0, 0, 0)] == pytest.approx(1 / 27)
    many = list(stability.resamples(list(range(stability.EXACT_UP_TO + 1))))
    assert len(many) == stability.DRAWS and many == list(stability.resamples(list(range(stability.EXACT_UP_TO + 1))))


# -- the registry and the page -----------------------------------------------------------------------------
def test_every_claim_quotes_or_paraphrases_its_source_and_declares_its_smallest_effect():
    for entry in CLAIMS:
        assert not entry.quoted or len(entry.sentence) > 20, entry.key
        superiority = entry.test == st.DIFFERENCE and not entry.margin and not entry.harness_check
        assert not superiority or entry.min_effect is not None, f"{entry.key}: no smallest effect of interest"
    checks = [entry.key for entry in CLAIMS if entry.harness_check]
    assert checks == ["L5"]


def test_the_markdown_tables_stay_narrow_and_every_verdict_names_its_data_and_model():
    rows = rows_of({2.0: {0: 0.9, 1: 0.91, 2: 0.92}, 1.0: {0: 0.5, 1: 0.5, 2: 0.52}})
    frame = c.evaluate([*CLAIMS[:3], claim(key="L5x", harness_check=True)], {"one": "toy"}, lambda *_: rows,
                       {"one": "digits / mlp_300_100"})
    markdown = c.page_markdown(frame)
    table_rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert table_rows and max(map(len, table_rows)) < 420
    verdict_rows = [line for line in table_rows if "](#claim-" in line]
    judged = [line for line in verdict_rows if "| one " in line]
    assert judged and all("digits / mlp_300_100" in line for line in judged)
    assert "## Harness sanity checks" in markdown and "check passes" in markdown
    assert "*quoted verbatim*" in markdown or "*paraphrase" in markdown


def test_the_forest_plot_groups_by_unit_on_one_scale_with_every_text_on_the_canvas():
    from bench_powerprop.reporting import forest

    from figure_layout import overlapping_texts, texts_outside_the_canvas

    rows = rows_of({2.0: {0: 0.9, 1: 0.91, 2: 0.95}, 1.0: {0: 0.5, 1: 0.5, 2: 0.52}})
    small = rows.assign(score=rows["score"] / 1000)  # a 0.04 pp effect beside a 40 pp one
    claims = [claim(key=f"P{index} with a long key", unit_text="pp", scale=100.0) for index in range(30)]
    claims += [claim(key="tiny", unit_text="pp", scale=100.0, experiments=("small",)),
               claim(key="rho", trend="alpha", treatment={}, baseline={}), claim(key="ratio", unit_text="log ratio")]
    frame = c.evaluate(claims, {"one": "toy", "small": "toy"},
                       lambda experiment, *_: small if experiment == "small" else rows)
    figure = forest.forest_figure(frame)
    panels = [axis for axis in figure.axes if axis.get_title(loc="left")]
    assert [axis.get_title(loc="left").split(":")[0] for axis in panels] == ["pp", "ρ", "log ratio"]
    pp = panels[0]
    assert len(pp.get_yticks()) == 31 + 30  # every pp row of both experiments on the one axis
    assert pp.get_xlim()[0] < 0.04 < 40 < pp.get_xlim()[1]
    assert texts_outside_the_canvas(figure) == [] and overlapping_texts(figure) == []
    width, height = figure.get_size_inches() * forest.DPI
    assert width <= 1200 and height <= 3000
