"""The claims registry and its one verdict rule, on tables whose answer is computed here independently.

t quantiles are the printed table values (two-sided 95%: t(0.975, df)); Welch's degrees of freedom
and the seeds-needed search are written out by hand below, not taken from the code under test.
"""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from bench_powerprop.cell_spec import CellSpec
from bench_powerprop.cells import CELL_COLUMNS
from bench_powerprop.pipelines import PIPELINES
from bench_powerprop.reporting import claims as c
from bench_powerprop.reporting import statistics as st
from bench_powerprop.reporting.adaptive import TRACE_COLUMNS
from bench_powerprop.reporting.claim_registry import CLAIMS
from bench_powerprop.reporting.lottery import ENSEMBLE_COLUMNS, SOLUTION_COLUMNS
from bench_powerprop.reporting.pages import html_page
from bench_powerprop.reporting.reports import row_columns
from bench_powerprop.reporting.rows import STRUCTURED_COLUMNS
from bench_powerprop.training.progress import GRADIENT_NORM_COLUMNS

#: t(0.975, df) from a printed t table
T975 = {1: 12.706205, 2: 4.302653, 3: 3.182446, 4: 2.776445, 5: 2.570582, 6: 2.446912, 15: 2.131450, 16: 2.119905, 17: 2.109816}
#: t(0.95, df) (the one-sided 5% quantile: the 90% interval)
T95 = {3: 2.353363, 4: 2.131847}



def claim(**changes) -> c.Claim:
    fields = {"key": "k", "text": "α > 1 beats α = 1", "source": "a paper", "kind": "toy", "metric": "score",
              "treatment": {"alpha": {">": 1}}, "baseline": {"alpha": 1}}
    return c.Claim(**{**fields, **changes})


def table(treatment: dict[int, list[float]], baseline: dict[int, list[float]], **extra) -> pd.DataFrame:
    """Rows of a toy table: {seed: values} per group (several rows per seed allowed), fingerprints shared per seed."""
    rows = [{"alpha": alpha, "seed": seed, "score": value, "status": "ok", "init_fingerprint": f"init{seed}",
             "batch_fingerprint": f"batches{seed}", **extra}
            for alpha, groups in ((2.0, treatment), (1.0, baseline)) for seed, values in groups.items() for value in values]
    return pd.DataFrame(rows)


def only(records: list[dict]) -> dict:
    assert len(records) == 1
    return records[0]


# -- the statistics, against hand computations ------------------------------------------------
def test_paired_interval_is_the_t_interval_with_n_minus_1_df():
    differences = [1.0, 2.0, 3.0, 4.0]
    sd = math.sqrt(sum((d - 2.5) ** 2 for d in differences) / 3)
    half = T975[3] * sd / 2
    estimate = st.paired_estimate(differences)
    assert (estimate.effect, estimate.df, estimate.n_treatment) == (2.5, 3, 4)
    assert estimate.low == pytest.approx(2.5 - half, abs=1e-5) and estimate.high == pytest.approx(2.5 + half, abs=1e-5)


def test_welch_interval_uses_welch_satterthwaite_df():
    treatment, baseline = [1.0, 2.0, 3.0], [2.0, 3.0, 5.0, 7.0]
    var_t = sum((x - 2) ** 2 for x in treatment) / 2
    var_b = sum((x - 4.25) ** 2 for x in baseline) / 3
    a, b = var_t / 3, var_b / 4
    df = (a + b) ** 2 / (a ** 2 / 2 + b ** 2 / 3)
    estimate = st.welch_estimate(treatment, baseline)
    assert estimate.df == pytest.approx(df) and estimate.effect == pytest.approx(-2.25)
    from scipy import stats  # only the quantile at a non-integer df; the df and SE are the hand computation above

    half = stats.t.ppf(0.975, df) * math.sqrt(a + b)
    assert (estimate.low, estimate.high) == pytest.approx((-2.25 - half, -2.25 + half))
    assert st.welch_df((math.sqrt(var_t), math.sqrt(var_b)), 5) == pytest.approx(
        (var_t / 5 + var_b / 5) ** 2 / ((var_t / 5) ** 2 / 4 + (var_b / 5) ** 2 / 4))


def test_welch_interval_is_scipys_welch_t_interval():
    """Against scipy's own Welch test (``ttest_ind(equal_var=False)``), at spreads far from 1 and unequal group sizes."""
    from scipy import stats

    rng = np.random.default_rng(3)
    for n_t, n_b, scale in ((3, 5, 0.01), (6, 4, 7.0), (2, 9, 0.3)):
        treatment, baseline = rng.normal(1.0, scale, n_t), rng.normal(0.0, 2.5 * scale, n_b)
        ours = st.welch_estimate(treatment, baseline)
        reference = stats.ttest_ind(treatment, baseline, equal_var=False)
        assert (ours.low, ours.high) == pytest.approx(tuple(reference.confidence_interval(0.95)), rel=1e-9)
        assert ours.df == pytest.approx(reference.df, rel=1e-12)


def test_a_constant_effect_has_one_sided_p_values_of_exactly_0_or_1():
    known = st.paired_estimate([0.5, 0.5, 0.5])  # zero spread: a known effect of 0.5
    assert known.constant
    assert (st.p_above(known, 0.0), st.p_below(known, 0.0)) == (0.0, 1.0)
    assert (st.p_above(known, 1.0), st.p_below(known, 1.0)) == (1.0, 0.0)
    assert (st.p_above(known, 0.5), st.p_below(known, 0.5)) == (1.0, 0.0)  # at the boundary: not above it
    known_90 = st.paired_estimate([0.5, 0.5, 0.5], st.EQUIVALENCE_LEVEL)
    inside = st.judge_equivalence(known_90, known, margin=1.0)
    assert (inside.verdict, inside.p_reproduces, inside.p_fails) == (st.REPRODUCES, 0.0, 1.0)
    outside = st.judge_equivalence(known_90, known, margin=0.25)
    assert (outside.verdict, outside.p_reproduces, outside.p_fails) == (st.DOES_NOT_REPRODUCE, 1.0, 0.0)
    at_the_margin = st.judge_equivalence(known_90, known, margin=0.5)  # an effect at a margin is not inside it
    assert (at_the_margin.verdict, at_the_margin.p_fails) == (st.DOES_NOT_REPRODUCE, 0.0)
    known_welch = st.welch_estimate([1.0, 1.0, 1.0], [0.0, 0.0])
    assert known_welch.spreads == (0.0, 0.0) and known_welch.se == 0.0 and known_welch.constant
    assert st.judge_difference(known_welch).verdict == st.REPRODUCES


def test_equivalence_p_values_are_scipys_one_sided_t_tests():
    """p_reproduces: the larger TOST p of the 90% estimate; p_fails: the nearer one-sided p of the 95% one against ±m,
    each scipy's ttest_1samp; equivalence needs both TOST p-values below 5% (the 90% interval inside ±m): here the
    90% interval reaches below −m (p 0.092), so nothing is decided (it was "reproduces" at 10% per side)."""
    from scipy import stats

    differences, margin = np.array([-0.2, -1.3, -0.6, -0.9, -0.5]), 1.0
    judgement = st.judge_equivalence(st.paired_estimate(differences, st.EQUIVALENCE_LEVEL), st.paired_estimate(differences),
                                     margin)
    def one_sided(mean, alternative):
        return stats.ttest_1samp(differences, mean, alternative=alternative).pvalue

    assert judgement.p_reproduces == pytest.approx(max(one_sided(-margin, "greater"), one_sided(margin, "less")), rel=1e-9)
    assert judgement.p_fails == pytest.approx(min(one_sided(margin, "greater"), one_sided(-margin, "less")), rel=1e-9)
    assert judgement.verdict == st.INCONCLUSIVE


def test_holm_adjusted_p_values_are_capped_at_1():
    assert st.holm([0.6, 0.7, math.nan]) == [1.0, 1.0, pytest.approx(math.nan, nan_ok=True)]
    assert st.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_a_p_value_equal_to_its_level_rejects_nothing():
    """Both directions reject only strictly below their level (one-sided p < α)."""
    just_below = float(np.nextafter(st.ALPHA, 0.0))
    assert st.verdict_of(st.ALPHA, 1.0, st.ALPHA, st.ALPHA) == st.INCONCLUSIVE
    assert st.verdict_of(1.0, st.ALPHA, st.ALPHA, st.ALPHA) == st.INCONCLUSIVE
    assert st.verdict_of(just_below, 1.0, st.ALPHA, st.ALPHA) == st.REPRODUCES
    assert st.verdict_of(1.0, just_below, st.ALPHA, st.ALPHA) == st.DOES_NOT_REPRODUCE


def test_seeds_needed_is_the_smallest_n_whose_t_half_width_clears_the_effect():
    # d = 1, s = 2: t(0.975, n−1)·2/√n < 1 first at n = 18 (t table: 2.1314·2/4 = 1.066, 2.1199·2/√17 = 1.028,
    # 2.1098·2/√18 = 0.995)
    assert [T975[n - 1] * 2 / math.sqrt(n) < 1 for n in (16, 17, 18)] == [False, False, True]
    assert st.seeds_needed(1.0, (2.0,), st.LEVEL, paired=True) == 18
    assert st.seeds_needed(0.0, (2.0,), st.LEVEL, paired=True) is None
    # d = 1, s = 1, where the n − 1 degrees of freedom decide: t(0.975, 5)·1/√6 = 1.049 > 1, t(0.975, 6)/√7 = 0.925;
    # with n degrees of freedom t(0.975, 6)/√6 = 0.999 would already clear at 6
    assert [T975[n - 1] / math.sqrt(n) < 1 for n in (6, 7)] == [False, True] and T975[6] / math.sqrt(6) < 1
    assert st.seeds_needed(1.0, (1.0,), st.LEVEL, paired=True) == 7
    # unpaired, equal spreads s = √2 and d = 1: SE = √(2s²/n), Welch df = 2(n−1); t table:
    # n = 16: t(0.975, 30) = 2.0423 · √(4/16) = 1.021; n = 17: t(0.975, 32) = 2.0369 · √(4/17) = 0.988 < 1
    assert st.seeds_needed(1.0, (math.sqrt(2), math.sqrt(2)), st.LEVEL, paired=False) == 17


@pytest.mark.parametrize(("differences", "verdict"), [
    ([3.0, 4.0, 5.0], st.REPRODUCES),
    ([-3.0, -4.0, -5.0], st.DOES_NOT_REPRODUCE),
    ([-1.0, 1.0, 2.0], st.INCONCLUSIVE),
    ([50.0], st.INCONCLUSIVE),  # one seed: no interval
])
def test_difference_verdict_reads_the_whole_95_interval(differences, verdict):
    judgement = st.judge_difference(st.paired_estimate(differences))
    assert judgement.verdict == verdict
    assert (judgement.seeds_needed is not None) == (verdict == st.INCONCLUSIVE and len(differences) > 1)


def test_non_inferiority_margin_moves_the_boundary_to_minus_m():
    estimate = st.paired_estimate([-0.2, 0.0, 0.1, -0.1])  # mean −0.05, interval about ±0.2
    assert st.judge_difference(estimate).verdict == st.INCONCLUSIVE
    assert st.judge_difference(estimate, margin=1.0).verdict == st.REPRODUCES
    assert st.judge_difference(st.paired_estimate([-3.0, -2.9, -3.1]), margin=1.0).verdict == st.DOES_NOT_REPRODUCE
    # the interval reaches below −m and its top is inside (−m, m): undecided, not "below"
    straddling = st.paired_estimate([-1.0, -0.5, 0.0, 0.5])
    assert straddling.low < -1.0 < straddling.high < 1.0
    assert st.judge_difference(straddling, margin=1.0).verdict == st.INCONCLUSIVE
    # an interval whose low end is exactly −m does not lie above it
    assert st.judge_difference(estimate, margin=-estimate.low).verdict == st.INCONCLUSIVE
    # the seeds that would move the interval off −m
    judged = st.judge_difference(straddling, margin=1.0)
    assert judged.seeds_needed == st.seeds_needed(abs(straddling.effect + 1.0), straddling.spreads, st.LEVEL, True)


def test_estimates_at_their_edges():
    """Two seeds are enough for an interval; one seed keeps its effect but is not decidable; a constant
    difference is an exact interval; NaN data is not decidable; Welch keeps the per-seed effects and both spreads."""
    two = st.welch_estimate([1.0, 2.0], [0.0, 0.5])
    assert two.decidable and math.isfinite(two.low) and math.isfinite(two.high) and two.paired is False
    one = st.paired_estimate([50.0])
    assert one.effect == 50.0 and one.decidable is False
    constant = st.paired_estimate([0.3, 0.3, 0.3])
    assert (constant.low, constant.high) == (0.3, 0.3) and constant.decidable
    rounding = st.paired_estimate([0.1 + 0.2, 0.3, 0.3])  # a spread of float rounding only: no interval around it
    assert rounding.low == rounding.effect == rounding.high
    assert st.paired_estimate([1.0, math.nan, 2.0]).decidable is False
    treatment, baseline = [1.0, 2.0, 4.0], [0.0, 1.0, 1.0, 3.0]
    welch = st.welch_estimate(treatment, baseline)
    assert welch.seed_effects == pytest.approx([x - 1.25 for x in treatment])
    assert welch.spreads == pytest.approx((float(np.std(treatment, ddof=1)), float(np.std(baseline, ddof=1))))


def test_spearman_per_seed_needs_two_distinct_values_on_each_side():
    assert st.spearman_per_seed([1, 2, 3], [0.0, 0.0, 1.0]) == pytest.approx(math.sqrt(3) / 2)  # ranks 1.5, 1.5, 3
    assert st.spearman_per_seed([1, 1, 2], [0.0, 1.0, 2.0]) == pytest.approx(math.sqrt(3) / 2)
    assert st.spearman_per_seed([1, 2], [3.0, 1.0]) == pytest.approx(-1.0)
    assert st.spearman_per_seed([1, 2, 3], [1.0, 1.0, 1.0]) == 0.0  # no trend: a known ρ of 0
    assert math.isnan(st.spearman_per_seed([2, 2, 2], [1.0, 2.0, 3.0]))
    assert math.isnan(st.spearman_per_seed([2], [1.0]))  # one level: no trend to measure, not a ρ of 0


def test_estimate_edges_by_construction():
    def estimate(low, high, n):
        return st.Estimate(0.0, low, high, st.LEVEL, 3.0, True, n, n, (1.0,), ())

    assert estimate(-1.0, 1.0, 2).decidable
    assert not estimate(-1.0, 1.0, 1).decidable and not estimate(-1.0, math.inf, 3).decidable
    assert not estimate(-math.inf, 1.0, 3).decidable
    for frozen in (estimate(-1.0, 1.0, 2), st.judge_difference(estimate(-1.0, 1.0, 2))):
        with pytest.raises(dataclasses.FrozenInstanceError):
            frozen.low = 0.0
    assert st.paired_estimate([1.0, 2.0]).decidable and st.paired_estimate([1.0]).paired is True
    assert st.welch_estimate([1.0], [2.0]).paired is False and st.welch_estimate([1.0] * 3, [0.0] * 3).paired is False
    assert st.paired_estimate([1.0, 2.0, 4.0]).spreads == pytest.approx((float(np.std([1.0, 2.0, 4.0], ddof=1)),))


def test_negligible_spread_is_1e_minus_12_of_the_values_scale_at_least_1():
    assert st.negligible(1e-12, np.array([1.0])) and not st.negligible(1.5e-12, np.array([1.0]))
    assert st.negligible(0.8e-12, np.array([0.5]))  # the scale is at least 1
    assert st.negligible(1e-11, np.array([-100.0])) and not st.negligible(2e-10, np.array([100.0]))


def test_seeds_needed_searches_up_to_max_seeds_and_no_further():
    def width(n):
        return st.half_width((1.0,), n, st.LEVEL, True)

    assert st.seeds_needed((width(st.MAX_SEEDS - 1) + width(st.MAX_SEEDS)) / 2, (1.0,), st.LEVEL, True) == st.MAX_SEEDS
    assert st.seeds_needed(width(7), (1.0,), st.LEVEL, True) == 8  # the half-width must be below the distance
    assert st.seeds_needed(math.inf, (1.0,), st.LEVEL, True) is None and st.seeds_needed(1.0, (), st.LEVEL, True) is None
    between = (st.half_width((1.0,), st.MAX_SEEDS, st.LEVEL, True) + st.half_width((1.0,), st.MAX_SEEDS + 1, st.LEVEL, True)) / 2
    assert st.seeds_needed(between, (1.0,), st.LEVEL, paired=True) is None  # only MAX_SEEDS + 1 would clear it


def test_tost_equivalence_on_constructed_differences():
    def verdict(differences, margin):
        return st.judge_equivalence(st.paired_estimate(differences, st.EQUIVALENCE_LEVEL), st.paired_estimate(differences),
                                    margin)

    tight = [0.1, -0.1, 0.05, -0.05, 0.0]  # 90% interval: 0 ± t(0.95, 4)·s/√5
    s = float(np.std(tight, ddof=1))
    assert T95[4] * s / math.sqrt(5) < 0.1
    judged = verdict(tight, 0.1)
    assert judged.verdict == st.REPRODUCES and judged.level == st.EQUIVALENCE_LEVEL
    assert judged.high == pytest.approx(T95[4] * s / math.sqrt(5), abs=1e-5)
    assert verdict([5.0, 5.2, 4.8, 5.1], 1.0).verdict == st.DOES_NOT_REPRODUCE  # 95% interval wholly above +m
    undecided = verdict([0.9, -0.5, 0.3, 1.4], 1.0)  # straddles the margin
    assert undecided.verdict == st.INCONCLUSIVE and undecided.seeds_needed is not None
    # the 95% interval reaches below −m but ends inside (−m, m): undecided, not "wholly outside"
    below = [-0.5, -1.5, 0.5, -0.5]
    assert -1.0 < st.paired_estimate(below).high < 1.0 and verdict(below, 1.0).verdict == st.INCONCLUSIVE
    assert verdict([-5.0, -5.2, -4.8, -5.1], 1.0).verdict == st.DOES_NOT_REPRODUCE  # 95% interval wholly below −m
    # |effect| > m: the 95% interval must narrow to clear +m by the effect's distance from it
    wide = [0.2, 2.6, 1.0, 1.0]  # effect 1.2
    assert verdict(wide, 1.0).verdict == st.INCONCLUSIVE
    assert verdict(wide, 1.0).seeds_needed == st.seeds_needed(1.2 - 1.0, (float(np.std(wide, ddof=1)),), st.LEVEL, True)
    # |effect| 0.525 < m: the 90% interval must narrow to within the 0.475 left to the margin
    spread = float(np.std([0.9, -0.5, 0.3, 1.4], ddof=1))
    assert undecided.seeds_needed == st.seeds_needed(1.0 - 0.525, (spread,), st.EQUIVALENCE_LEVEL, paired=True)


def test_combining_comparisons():
    assert st.combine([st.REPRODUCES, st.REPRODUCES]) == st.REPRODUCES
    assert st.combine([st.REPRODUCES, st.INCONCLUSIVE]) == st.INCONCLUSIVE
    assert st.combine([st.REPRODUCES, st.DOES_NOT_REPRODUCE]) == st.DOES_NOT_REPRODUCE
    assert st.combine([st.REPRODUCES, st.NOT_RUN]) == st.REPRODUCES  # judged on what ran; the part says "not run"
    assert st.combine([st.NOT_RUN]) == st.NOT_RUN
    assert st.combine([st.DOES_NOT_REPRODUCE, st.REPRODUCES], "any") == st.REPRODUCES
    assert st.combine([st.DOES_NOT_REPRODUCE, st.INCONCLUSIVE], "any") == st.INCONCLUSIVE
    assert st.combine([st.DOES_NOT_REPRODUCE, st.DOES_NOT_REPRODUCE], "any") == st.DOES_NOT_REPRODUCE
    assert st.combine([st.INCONCLUSIVE, st.INCONCLUSIVE], "any") == st.INCONCLUSIVE


# -- judging a claim on a table ---------------------------------------------------------------
def test_paired_effect_over_per_seed_means():
    # two rows per seed in each group: a seed's value is the mean of its rows
    rows = table({0: [0.9, 0.7], 1: [0.6, 0.6], 2: [0.8, 1.0]}, {0: [0.5, 0.3], 1: [0.4, 0.4], 2: [0.2, 0.2]})
    differences = [0.8 - 0.4, 0.6 - 0.4, 0.9 - 0.2]
    mean, sd = np.mean(differences), np.std(differences, ddof=1)
    result = only(c.judge(claim(), rows))
    assert result["pairing"] == "paired by seed"
    assert result["effect"] == pytest.approx(100 * mean)
    assert result["low"] == pytest.approx(100 * (mean - T975[2] * sd / math.sqrt(3)), abs=1e-3)
    assert json.loads(result["seed_effects"]) == pytest.approx([100 * d for d in differences])
    assert (result["n_treatment"], result["n_baseline"], result["df"]) == (3, 3, 2)
    # the interval still reaches below zero; four seeds would clear it at this effect and spread
    assert result["verdict"] == c.INCONCLUSIVE
    assert [T975[n - 1] * sd / math.sqrt(n) < mean for n in (3, 4)] == [False, True] and result["seeds_needed"] == 4


def test_a_seed_in_one_group_only_is_left_out_of_the_pairing_and_named():
    rows = table({0: [0.9], 1: [0.6], 2: [0.8], 5: [0.7]}, {0: [0.5], 1: [0.4], 2: [0.2]})
    result = only(c.judge(claim(), rows))
    assert result["pairing"] == "paired by seed (seed 5 in one group only: left out)"
    assert (result["n_treatment"], result["n_baseline"]) == (3, 3)
    assert result["effect"] == pytest.approx(100 * np.mean([0.4, 0.2, 0.6]))


def test_mismatched_fingerprints_refuse_the_pairing_and_fall_back_to_welch():
    rows = table({0: [0.9], 1: [0.8], 2: [0.85]}, {0: [0.5], 1: [0.4], 2: [0.45]})
    rows.loc[(rows["alpha"] == 1.0) & (rows["seed"] == 1), "init_fingerprint"] = "another init"
    result = only(c.judge(claim(), rows))
    assert "pairing refused" in result["pairing"] and "init_fingerprint differs" in result["pairing"] and "seed 1" in result["pairing"]
    welch = st.welch_estimate([0.9, 0.8, 0.85], [0.5, 0.4, 0.45])
    assert result["low"] == pytest.approx(100 * welch.low) and result["df"] == pytest.approx(welch.df)
    rows["batch_fingerprint"] = rows["batch_fingerprint"].where(rows["alpha"] == 2.0, None)
    rows["init_fingerprint"] = rows["seed"].map(lambda seed: f"init{seed}")
    assert "batch_fingerprint is missing" in only(c.judge(claim(), rows))["pairing"]
    assert "carries no" in only(c.judge(claim(), rows.drop(columns=["init_fingerprint"])))["pairing"]
    assert only(c.judge(claim(paired=False), table({0: [0.9], 1: [0.8]}, {0: [0.5], 1: [0.4]})))["pairing"] == "unpaired (Welch)"


def test_lower_is_better_flips_the_sign_and_a_diverged_run_counts_at_the_value_it_reached():
    rows = table({0: [0.1], 1: [0.2], 2: [0.15]}, {0: [0.5], 1: [0.6], 2: [0.55]})
    assert only(c.judge(claim(higher_is_better=False, scale=1.0), rows))["effect"] == pytest.approx(0.4)
    rows.loc[(rows["alpha"] == 2.0) & (rows["seed"] == 0), ["score", "status"]] = [0.9, "diverged"]
    result = only(c.judge(claim(higher_is_better=False, scale=1.0), rows))
    # seed 0 now counts at 0.9 (0.5 − 0.9 = −0.4): differences −0.4, 0.4, 0.4
    assert result["effect"] == pytest.approx(0.4 / 3) and result["n_treatment"] == 3 and result["diverged"] == "1/3 / 0/3"
    assert result["verdict"] == c.INCONCLUSIVE


def test_a_clear_effect_the_other_way_does_not_reproduce():
    rows = table({0: [0.1], 1: [0.12], 2: [0.11]}, {0: [0.9], 1: [0.92], 2: [0.9]})
    assert only(c.judge(claim(), rows))["verdict"] == c.DOES_NOT_REPRODUCE


def test_selectors_equality_lists_operators_and_best_on_validation():
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


def test_best_on_validation_is_chosen_per_method_and_sparsity_by_mean_over_seeds():
    # gmp: α = 1.5 has the better mean validation accuracy; rigl: α = 2 (one seed worse, the mean better)
    val = {("gmp", 1.5): [0.8, 0.8], ("gmp", 2.0): [0.7, 0.9 - 0.11], ("rigl", 1.5): [0.6, 0.6], ("rigl", 2.0): [0.55, 0.7]}
    rows = pd.DataFrame([{"experiment": "e", "method": method, "variant": "default", "alpha": alpha, "sparsity": 0.9,
                          "seed": seed, "level": math.nan, "val_accuracy": value}
                         for (method, alpha), values in val.items() for seed, value in enumerate(values)])
    chosen = c.select(rows, {"alpha": {">": 1, "best": "val_accuracy"}}, claim())
    assert sorted(set(zip(chosen["method"], chosen["alpha"]))) == [("gmp", 1.5), ("rigl", 2.0)]
    assert len(chosen) == 4  # both seeds of each chosen α
    assert c.describe({"alpha": {">": 1, "best": "val_accuracy"}}) == "alpha > 1, alpha of the best mean val_accuracy"
    assert c.chosen_text(chosen, {"alpha": {">": 1, "best": "val_accuracy"}}) == "alpha chosen on val_accuracy: 1.5 (1×), 2 (1×)"


def test_describe_spells_out_the_selectors():
    selectors = {"alpha": {">": 1}, "method": {"!=": "dense"}, "sparsity": {">=": 0.9}}
    assert c.describe(selectors) == "alpha > 1, method ≠ dense, sparsity ≥ 0.9"
    assert c.describe({"variant": ["a", "b"], "seed": 0}) == "variant ∈ {a, b}, seed = 0"


def methods_table(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"method": method, "seed": seed, "score": value, "status": "ok", "init_fingerprint": f"i{seed}",
                          "batch_fingerprint": f"b{seed}"} for method, scores in values.items() for seed, value in enumerate(scores)])


def test_ordering_judges_every_adjacent_pair():
    rows = methods_table({"a": [0.9, 0.91, 0.92], "b": [0.8, 0.81, 0.82], "c": [0.85, 0.7, 0.9]})
    ordering = claim(treatment={}, baseline={}, order=({"method": "a"}, {"method": "b"}, {"method": "c"}))
    results = c.judge(ordering, rows)
    assert [result["part"] for result in results] == ["method = a vs method = b", "method = b vs method = c"]
    several = claim(treatment={"method": "gmp", "alpha": 1}, baseline=({"method": "rigl"}, {"method": "set"}))
    assert [c.part_label(t, b, several.comparisons()) for t, b in several.comparisons()] == ["vs method = rigl", "vs method = set"]
    assert [result["verdict"] for result in results] == [c.REPRODUCES, c.INCONCLUSIVE]
    assert st.combine([result["verdict"] for result in results]) == c.INCONCLUSIVE


def test_one_treatment_against_several_baselines_and_matched_levels():
    rows = methods_table({"gmp": [0.9, 0.9, 0.9], "rigl": [0.8, 0.8, 0.81]}).assign(sparsity=0.9)
    extra = methods_table({"gmp": [0.1, 0.1, 0.1]}).assign(sparsity=0.99)  # no rigl at 0.99: left out when matched
    several = claim(treatment={"method": "gmp"}, baseline=({"method": "rigl"}, {"method": "dsr"}), matched_on=("sparsity",))
    results = c.judge(several, pd.concat([rows, extra]))
    assert results[0]["effect"] == pytest.approx(100 * (0.9 - np.mean([0.8, 0.8, 0.81])))
    assert results[1]["verdict"] == c.NOT_RUN  # dsr absent: that comparison is not run


def test_trend_is_the_mean_per_seed_spearman_rho():
    rows = pd.DataFrame([{"alpha": alpha, "seed": seed, "score": score, "status": "ok", "init_fingerprint": f"i{seed}",
                          "batch_fingerprint": f"b{seed}"}
                         for seed, scores in enumerate([[1, 2, 3, 4], [1, 3, 2, 4], [2, 1, 3, 4]])
                         for alpha, score in zip([1, 1.5, 2, 3], scores)])
    rhos = [1.0, 0.8, 0.8]  # 1 − 6Σd²/(n(n²−1)) with Σd² = 0, 2, 2 and n = 4
    result = only(c.judge(claim(trend="alpha", treatment={}, baseline={}), rows))
    assert result["effect"] == pytest.approx(np.mean(rhos))
    assert result["low"] == pytest.approx(np.mean(rhos) - T975[2] * np.std(rhos, ddof=1) / math.sqrt(3), abs=1e-5)
    assert result["verdict"] == c.REPRODUCES
    refused = only(c.judge(claim(trend="alpha", treatment={}, baseline={}), rows.drop(columns=["batch_fingerprint"])))
    assert refused["verdict"] == c.INCONCLUSIVE and "pairing refused" in refused["pairing"]


def test_split_with_any_names_the_sparsest_level_that_holds():
    rows = pd.DataFrame([{"level": level, "seed": seed, "score": score + 0.001 * seed, "status": "ok", "init_fingerprint": f"i{seed}",
                          "batch_fingerprint": f"b{seed}"}
                         for level, score in ((0, 0.9), (1, 0.9), (2, 0.9), (3, 0.5)) for seed in range(4)])
    tickets = claim(treatment={"level": {">=": 1}}, baseline={"level": 0}, split="level", combine="any",
                    test=st.EQUIVALENCE, margin=0.01)
    results = c.judge(tickets, rows)
    assert [result["verdict"] for result in results] == [c.REPRODUCES, c.REPRODUCES, c.DOES_NOT_REPRODUCE]
    assert all(result["note"] == "sparsest level = 2 where it holds (Holm-corrected)" for result in results)


def test_tables_without_fingerprints_take_them_from_the_runs_table():
    norms = pd.DataFrame({"method": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "step": 0, "grad_norm": [1.0, 2.0, 3.0, 4.0]})
    runs = pd.DataFrame({"method": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "init_fingerprint": ["x", "y", "x", "y"],
                         "batch_fingerprint": ["p", "q", "p", "q"]})
    merged = c.with_fingerprints(norms, lambda: runs)
    assert list(merged["init_fingerprint"]) == ["x", "y", "x", "y"] and c.pairing_refusal(merged, "seed") == ""


def test_evaluate_one_row_per_testing_experiment_and_not_run_otherwise():
    tables = {"one": table({0: [0.9], 1: [0.8]}, {0: [0.5], 1: [0.4]}), "two": table({0: [0.5]}, {0: [0.5]}),
              "empty": table({}, {0: [0.5], 1: [0.6]})}

    def read(experiment, kind, role):
        if role != "runs":
            raise KeyError(role)
        return tables[experiment]

    claims = [claim(), claim(key="absent", kind="nowhere", runs_with="configs/default.yaml"),
              claim(key="old", experiments=("one",), metric="near_zero_first_layer - near_zero_last_layer"),
              claim(key="named", experiments=("two",)), claim(key="missing", table="solutions"),
              claim(key="unshipped", kind="nowhere", runs_with="configs/no_such_file.yaml")]
    result = c.evaluate(claims, {"one": "toy", "two": "toy", "empty": "toy", "other": "elsewhere"}, read)
    assert list(zip(result["key"], result["experiment"])) == [
        ("k", "one"), ("k", "two"), ("k", "empty"), ("absent", "—"), ("old", "one"), ("named", "two"), ("missing", "one"),
        ("missing", "two"), ("missing", "empty"), ("unshipped", "—")]
    assert list(result["verdict"][:4]) == [c.REPRODUCES, c.INCONCLUSIVE, c.NOT_RUN, c.NOT_RUN]
    notes = dict(zip(result["key"], result["note"]))
    assert "no active experiment of kind 'nowhere'" in notes["absent"] and "`configs/default.yaml`" in notes["absent"]
    assert "not shipped" not in notes["absent"] and "(not shipped)" in notes["unshipped"]
    assert "cannot give 'near_zero_first_layer - near_zero_last_layer'" in notes["old"]  # a table written before the column
    assert "table 'solutions' of one is missing" in result["note"].iloc[6]
    assert "no rows match" in result["note"].iloc[2]
    assert list(result.columns) == c.CLAIM_COLUMNS


def test_claims_page_prints_the_rule_one_row_per_result_and_the_failures_up_front(tmp_path):
    tables = {"one": table({0: [0.9], 1: [0.8], 2: [0.85]}, {0: [0.5], 1: [0.4], 2: [0.45]})}
    result = c.evaluate([claim(metric_text="fraction of |θ| < ε"), claim(key="x", kind="nowhere"),
                         claim(key="worse", higher_is_better=False)], {"one": "toy"},
                        lambda experiment, kind, role: tables[experiment])
    markdown = c.page_markdown(result, "forest.png")
    assert c.VERDICT_RULE in markdown and "![Forest plot" in markdown
    assert f"* **{c.DOES_NOT_REPRODUCE}** (1): worse (one)" in markdown
    assert f"* **{c.REPRODUCES}** (1): k (one)" in markdown
    page = html_page(markdown, "claims")
    # the verdict table (header + a row per claim) and a detail table per judged claim (header + its one row): the
    # pipes in |θ| do not split cells
    assert page.count("<tr>") == 1 + len(result) + 2 * 3
    assert "fraction of |θ| &lt; ε" in page
    assert c.overview_html(result).count("<tr>") == 1 + len(result)

    from bench_powerprop.reporting import forest

    path = tmp_path / "forest.png"
    forest.save(forest.forest_figure(result), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and forest.data_uri(path).startswith("data:image/png;base64,")


@pytest.mark.parametrize("claims", [1, 3, 80])
def test_the_forest_plot_has_no_overlapping_text(claims):
    from bench_powerprop.reporting import forest

    from figure_layout import overlapping_texts

    tables = {"one": table({0: [0.9], 1: [0.8], 2: [0.85]}, {0: [0.5], 1: [0.4], 2: [0.45]})}
    result = c.evaluate([claim(key=f"P{index} a claim key as long as the longest labels") for index in range(claims)], {"one": "toy"},
                        lambda experiment, kind, role: tables[experiment])
    figure = forest.forest_figure(result)
    figure.canvas.draw()
    assert overlapping_texts(figure) == []


# -- the registry -----------------------------------------------------------------------------
def test_every_claim_of_issue_18_is_declared_with_its_source_and_scale():
    keys = [entry.key for entry in CLAIMS]
    assert len(set(keys)) == len(keys)
    wanted = {f"P{i}" for i in range(1, 6)} | {f"S{i}" for i in range(1, 9)} | {f"G{i}" for i in range(1, 7)} | {
        f"L{i}" for i in range(1, 7)}
    assert wanted <= {key.rstrip("abc") for key in keys}
    assert all(entry.source and entry.scale_note for entry in CLAIMS)


def test_every_claim_names_a_known_kind_table_and_columns():
    norms = [*CELL_COLUMNS, "status", *GRADIENT_NORM_COLUMNS]
    for entry in CLAIMS:
        assert entry.kind in PIPELINES, f"{entry.key}: unknown kind {entry.kind!r}"
        declared = {"runs": row_columns(entry.kind), "trace": TRACE_COLUMNS, "norms": norms,
                    "solutions": SOLUTION_COLUMNS, "ensembles": ENSEMBLE_COLUMNS, "structured": STRUCTURED_COLUMNS}
        assert entry.table in PIPELINES[entry.kind].tables, entry.key
        columns = declared[entry.table]
        selectors = [entry.where, *(s for pair in entry.comparisons() for s in pair), *entry.order]
        named = {column for selector in selectors for column in selector} | {
            entry.unit, entry.trend, entry.split, entry.pick_on} - {""}
        named |= {wanted["best"] for selector in selectors for wanted in selector.values()
                  if isinstance(wanted, dict) and "best" in wanted}
        assert named <= set(columns), (entry.key, named - set(columns))
        pd.DataFrame({column: [1.0] for column in columns}).eval(entry.metric)  # the metric is an expression of columns


# -- the per-cell weight statistics -----------------------------------------------------------
def spec(alpha: float, seed: int) -> CellSpec:
    return CellSpec.from_dict({"experiment": "e", "method": "dense", "variant": "default", "alpha": alpha, "sparsity": 0.0, "seed": seed,
            "data": {"name": "digits", "split_seed": 0}, "model": {"name": "mlp", "hidden": [8]},
            "train": {"steps": 1, "batch_size": 4, "lr": 0.1}})


def test_init_fingerprint_is_the_seed_dense_init_and_batch_fingerprint_the_first_indices():
    from bench_powerprop.powerprop import effective_weights
    from bench_powerprop.training import weight_statistics as ws
    from bench_powerprop.training.trainer import build_cell

    model, tasks, _ = build_cell(spec(1.0, 3))  # α = 1: powerpropify leaves θ bit-identical
    thetas = [theta.double().numpy() for theta in effective_weights(model).values()]
    statistics = ws.weight_statistics(model, spec(1.0, 3), tasks)
    assert statistics["init_fingerprint"] == ws.digest(*thetas)
    model2, tasks2, _ = build_cell(spec(2.0, 3))
    assert ws.weight_statistics(model2, spec(2.0, 3), tasks2)["init_fingerprint"] == statistics["init_fingerprint"]
    model4, tasks4, _ = build_cell(spec(1.0, 4))
    other = ws.weight_statistics(model4, spec(1.0, 4), tasks4)
    assert other["init_fingerprint"] != statistics["init_fingerprint"]
    assert other["batch_fingerprint"] != statistics["batch_fingerprint"]
    first = [tasks[0].train_batches(4, 3).order[: 4 * ws.FINGERPRINT_BATCHES].numpy()]
    assert statistics["batch_fingerprint"] == ws.digest(np.array([4]), *first)
    # near zero: |θ| < 0.1 × the layer's initial std, weighted by layer size
    threshold = [ws.NEAR_ZERO_FACTOR * theta.std() for theta in thetas]
    below = sum(int((np.abs(theta) < t).sum()) for theta, t in zip(thetas, threshold))
    assert statistics["near_zero_fraction"] == pytest.approx(below / sum(theta.size for theta in thetas))
    assert statistics["near_zero_first_layer"] == pytest.approx(float(np.mean(np.abs(thetas[0]) < threshold[0])))


def test_bimodality_coefficient_separates_one_heap_from_two():
    from bench_powerprop.training.weight_statistics import bimodality_coefficient

    rng = np.random.default_rng(0)
    peaked = rng.laplace(size=20_000)
    heaps = np.concatenate([rng.normal(-3, 0.3, 10_000), rng.normal(3, 0.3, 10_000)])
    assert bimodality_coefficient(peaked) < 5 / 9 < bimodality_coefficient(heaps)
    values = np.array([0.0, 1.0, 2.0, 10.0, 3.0])
    n, g = len(values), float(pd.Series(values).skew())
    k = float(pd.Series(values).kurt())  # pandas: the same bias-corrected estimators, computed independently
    assert bimodality_coefficient(values) == pytest.approx((g ** 2 + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


@pytest.mark.parametrize("n", [4, 5, 1000, 20_000])
def test_skewness_and_kurtosis_are_scipys_bias_corrected_estimators(n):
    from scipy import stats

    from bench_powerprop.training.weight_statistics import bias_corrected_skew_kurtosis

    values = np.random.default_rng(n).gamma(2.0, size=n)
    skew, kurtosis = bias_corrected_skew_kurtosis(values)
    assert skew == pytest.approx(stats.skew(values, bias=False), rel=1e-12)
    assert kurtosis == pytest.approx(stats.kurtosis(values, bias=False), rel=1e-12)


def test_training_records_the_statistics_and_the_tidy_rows_carry_them(tmp_path):
    from bench_powerprop.reporting.rows import WEIGHT_COLUMNS, trained_row
    from bench_powerprop.training.trainer import train_cell

    from helpers import digits_spec

    metrics = {alpha: train_cell(digits_spec(steps=5, alpha=alpha, method=method, sparsity=sparsity), tmp_path / f"run{alpha}",
                                 tmp_path / f"ckpt{alpha}", progress=False)
               for alpha, method, sparsity in ((1.0, "dense", 0.0), (2.0, "static", 0.9))}
    one, two = metrics[1.0], metrics[2.0]
    assert one["init_fingerprint"] == two["init_fingerprint"] and one["batch_fingerprint"] == two["batch_fingerprint"]
    assert 0 <= one["near_zero_fraction"] <= 1 and set(one["layer_near_zero_fraction"]) == set(one["layer_zero_fraction"])
    assert two["near_zero_fraction"] >= two["actual_sparsity"] > 0.8  # the static mask's exact zeros count as near zero
    cell = {"experiment": "oneshot_digits", "method": "dense", "variant": "default", "alpha": 1.0, "sparsity": 0.0,
            "seed": 0, "level": None}
    row = trained_row(cell, one)
    assert {column: row[column] for column in WEIGHT_COLUMNS} == {column: one[column] for column in WEIGHT_COLUMNS}


def test_small_weight_movement_is_the_mean_move_of_the_lowest_quarter_of_initial_magnitudes():
    """Two layers of 8 weights: the lowest quarter of |θ₀| is each layer's two smallest; their |θ − θ₀| / σ₀ by hand."""
    import numpy as np

    from bench_powerprop.training.weight_statistics import small_weight_movement

    initial = {"a": np.array([0.05, -0.1, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0]),
               "b": np.array([2.0, -3.0, 0.2, 4.0, -0.1, 5.0, 6.0, -7.0])}
    final = {"a": initial["a"] + np.array([0.3, -0.1, 9, 9, 9, 9, 9, 9]),
             "b": initial["b"] + np.array([9, 9, 0.4, 9, 0.0, 9, 9, 9])}
    spread = {"a": 0.5, "b": 2.0}
    # a: |0.3| / 0.5 = 0.6 and |−0.1| / 0.5 = 0.2; b: 0.4 / 2 = 0.2 and 0 / 2 = 0
    assert small_weight_movement(final, initial, spread) == pytest.approx((0.6 + 0.2 + 0.2 + 0.0) / 4)


def test_powerprop_sparse_claims_read_sparse_mnist5k_and_the_method_comparisons_skip_it():
    """sparse_mnist5k runs only P3's and P5's arms: those claims test it, the comparisons that need dense, static, SET
    or DSR rows do not (each would otherwise be "not run" for it); the default grid holds both arms of each."""
    from bench_powerprop.config import grid_cells, load_yaml

    from conftest import REPO

    by_key = {claim.key: claim for claim in CLAIMS}
    assert all(by_key[key].tests_experiment("sparse_mnist5k") for key in ("P3", "P5"))
    assert not any(by_key[key].tests_experiment("sparse_mnist5k") for key in ("G7", "L1", "L4", "L6", "L7"))
    assert all(by_key[key].tests_experiment("sparse_digits") for key in ("P3", "P5", "G7", "L1", "L4", "L6", "L7"))
    cells = [cell for cell in grid_cells(load_yaml(REPO / "configs" / "default.yaml")) if cell.experiment == "sparse_mnist5k"]
    arms = {(cell.method, cell.alpha > 1, cell.sparsity) for cell in cells}
    assert {("gmp", False, 0.95), ("gmp", True, 0.95), ("gmp", False, 0.99), ("gmp", True, 0.99)} <= arms
