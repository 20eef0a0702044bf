"""The one statistical rule of the claims page: intervals over seeds, verdicts, and the seeds a verdict would need.

Every effect is signed so that positive is the direction a claim states. The seed is the unit of
replication. Intervals are mean ± t·se with the t quantile of ``scipy.stats.t`` (the same numbers as
``ttest_1samp(d).confidence_interval`` / ``ttest_ind(equal_var=False).confidence_interval``, written out
because the verdict-stability bootstrap calls them thousands of times):

* paired by seed: the per-seed differences d₁…dₙ, a t-interval with n − 1 degrees of freedom, se = s/√n;
* unpaired: Welch's interval with Welch–Satterthwaite degrees of freedom, se = √(s²ₜ/nₜ + s²ᵦ/nᵦ).

Verdicts (``TESTS``): a *difference* claim (margin m ≥ 0; m > 0 makes it a non-inferiority claim,
"at least as well") reproduces when the whole 95% interval lies above −m and does not reproduce
when it lies wholly below −m. An *equivalence* claim (two one-sided tests against ±m) reproduces
when the 90% interval lies inside (−m, m) and does not reproduce when the 95% interval lies wholly
outside [−m, m]. Anything else is inconclusive, and ``seeds_needed`` says how many seeds per group
would decide it if the observed effect and spread held.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
#: the two one-sided tests at 5% each are the 90% interval inside the margins
EQUIVALENCE_LEVEL = 0.90
MIN_SEEDS = 2
MAX_SEEDS = 10_000

REPRODUCES = "reproduces"
DOES_NOT_REPRODUCE = "does not reproduce"
INCONCLUSIVE = "inconclusive"
#: a group with fewer valid seeds than the config asks for: never judged
INSUFFICIENT = "insufficient"
NOT_RUN = "not run"
#: one-sided error rate of each direction: a 95% two-sided interval clears a boundary when its one-sided p < 0.025
ALPHA = (1 - LEVEL) / 2
#: TOST: both one-sided tests at 5% (the 90% interval inside the margins)
EQUIVALENCE_ALPHA = (1 - EQUIVALENCE_LEVEL) / 2

DIFFERENCE, EQUIVALENCE = "difference", "equivalence"
TESTS = (DIFFERENCE, EQUIVALENCE)


@dataclass(frozen=True)
class Estimate:
    """An effect (positive = the claimed direction) with its interval at ``level``."""

    effect: float
    low: float
    high: float
    level: float
    df: float
    paired: bool
    n_treatment: int
    n_baseline: int
    #: spread the seeds-needed projection assumes: the sd of the differences (paired), of each group (unpaired)
    spreads: tuple[float, ...]
    #: one effect per seed: the paired differences, or (unpaired) each treatment seed minus the baseline mean
    seed_effects: tuple[float, ...]
    #: the standard error the interval is t·se of (0: no spread; NaN: no interval)
    se: float = math.nan

    @property
    def constant(self) -> bool:
        """Zero spread: every seed gave the same effect, a known effect (it decides; issue 28)."""
        return self.decidable and self.se == 0.0

    @property
    def decidable(self) -> bool:
        return min(self.n_treatment, self.n_baseline) >= MIN_SEEDS and math.isfinite(self.low) and math.isfinite(self.high)


def negligible(spread: float, values: np.ndarray) -> bool:
    """A spread at float-rounding level (identical seeds up to the last bits): no interval width, no scipy warning."""
    return spread <= 1e-12 * max(1.0, float(np.abs(values).max()))


def nan_estimate(paired: bool, n_treatment: int, n_baseline: int, effect: float, seed_effects=()) -> Estimate:
    return Estimate(effect, math.nan, math.nan, math.nan, math.nan, paired, n_treatment, n_baseline, (), tuple(seed_effects))


@functools.lru_cache(maxsize=256)
def t_quantile(q: float, df: int) -> float:
    """t(q, df) for an integer df (cached: the bootstrap asks for the same few thousands of times)."""
    return float(stats.t.ppf(q, df))


def paired_estimate(differences: Sequence[float], level: float = LEVEL) -> Estimate:
    """t-interval of the mean per-seed difference, n − 1 degrees of freedom."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n < MIN_SEEDS:
        return nan_estimate(True, n, n, float(d.mean()) if n else math.nan, d)
    sd = float(d.std(ddof=1))
    mean = float(d.mean())
    if negligible(sd, d):
        sd = 0.0
    half = t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, level, n - 1, True, n, n, (sd,), tuple(d), sd / math.sqrt(n))


def welch_estimate(treatment: Sequence[float], baseline: Sequence[float], level: float = LEVEL) -> Estimate:
    """Welch's interval of mean(treatment) − mean(baseline), Welch–Satterthwaite degrees of freedom."""
    t, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    effect = float(t.mean() - b.mean()) if len(t) and len(b) else math.nan
    seed_effects = tuple(t - b.mean()) if len(b) else ()
    if min(len(t), len(b)) < MIN_SEEDS:
        return nan_estimate(False, len(t), len(b), effect, seed_effects)
    spreads = (float(t.std(ddof=1)), float(b.std(ddof=1)))
    if negligible(max(spreads), np.concatenate([t, b])):
        return Estimate(effect, effect, effect, level, math.inf, False, len(t), len(b), (0.0, 0.0), seed_effects, 0.0)
    a, b_ = spreads[0] ** 2 / len(t), spreads[1] ** 2 / len(b)
    df = (a + b_) ** 2 / (a ** 2 / (len(t) - 1) + b_ ** 2 / (len(b) - 1))
    se = math.sqrt(a + b_)
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    return Estimate(effect, effect - half, effect + half, level, df, False, len(t), len(b), spreads, seed_effects, se)


def estimate(treatment: Sequence[float], baseline: Sequence[float], paired: bool, level: float = LEVEL) -> Estimate:
    """``paired``: ``treatment`` and ``baseline`` are aligned by seed."""
    if paired:
        return paired_estimate(np.asarray(treatment, dtype=float) - np.asarray(baseline, dtype=float), level)
    return welch_estimate(treatment, baseline, level)


def welch_df(spreads: tuple[float, float], n):
    """Welch–Satterthwaite degrees of freedom with ``n`` seeds in each group (``n``: an int or an array of them)."""
    a, b = (s ** 2 / n for s in spreads)
    return (a + b) ** 2 / (a ** 2 / (n - 1) + b ** 2 / (n - 1))


def half_widths(spreads: tuple[float, ...], n: np.ndarray, level: float, paired: bool) -> np.ndarray:
    """t_{(1+level)/2, df}·SE for each seed count in ``n``: SE = s/√n, df = n − 1 (paired); SE = √((s²ₜ + s²ᵦ)/n), Welch
    df. One vectorised quantile call: ``seeds_needed`` scans thousands of n for every resample of the stability bootstrap."""
    quantile = (1 + level) / 2
    n = np.asarray(n, dtype=float)
    if paired:
        return stats.t.ppf(quantile, n - 1) * spreads[0] / np.sqrt(n)
    return stats.t.ppf(quantile, welch_df(spreads, n)) * np.sqrt(sum(s ** 2 for s in spreads) / n)


def half_width(spreads: tuple[float, ...], n: int, level: float, paired: bool) -> float:
    """``half_widths`` at one seed count."""
    return float(half_widths(spreads, np.array([n]), level, paired)[0])


def seeds_needed(distance: float, spreads: tuple[float, ...], level: float, paired: bool) -> int | None:
    """The smallest n ≥ 2 with t_{(1+level)/2, df(n)}·SE(n) < ``distance`` (the observed effect's distance from the
    boundary the interval must clear), at the observed spreads; None when no n up to ``MAX_SEEDS`` does."""
    if not spreads or not math.isfinite(distance) or distance <= 0 or not all(map(math.isfinite, spreads)):
        return None
    counts = np.arange(MIN_SEEDS, MAX_SEEDS + 1)
    clears = np.flatnonzero(half_widths(spreads, counts, level, paired) < distance)
    return int(counts[clears[0]]) if clears.size else None


def p_above(estimate: Estimate, boundary: float) -> float:
    """One-sided p of "the effect exceeds ``boundary``": the t tail of (effect − boundary)/se; zero spread: 0 or 1."""
    if not estimate.decidable:
        return math.nan
    if estimate.constant:
        return 0.0 if estimate.effect > boundary else 1.0
    return float(stats.t.sf((estimate.effect - boundary) / estimate.se, estimate.df))


def p_below(estimate: Estimate, boundary: float) -> float:
    """One-sided p of "the effect lies below ``boundary``"; zero spread: 0 when the effect does not exceed it."""
    if not estimate.decidable:
        return math.nan
    if estimate.constant:
        return 0.0 if estimate.effect <= boundary else 1.0
    return float(stats.t.cdf((estimate.effect - boundary) / estimate.se, estimate.df))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: sorted ascending, p₍ᵢ₎ × (k − i + 1) (i from 1), made monotone, capped at 1;
    NaN stays NaN and does not count in k."""
    finite = [(p, index) for index, p in enumerate(p_values) if math.isfinite(p)]
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class Judgement:
    verdict: str
    #: the interval the verdict read (the 90% one when an equivalence claim is equivalent or undecided)
    low: float
    high: float
    level: float
    seeds_needed: int | None
    #: the one-sided p-values whose rejection gives "reproduces" / "does not reproduce", and the level each is read at
    p_reproduces: float = math.nan
    p_fails: float = math.nan
    alpha_reproduces: float = ALPHA
    alpha_fails: float = ALPHA


def verdict_of(p_reproduces: float, p_fails: float, alpha_reproduces: float, alpha_fails: float) -> str:
    if p_reproduces < alpha_reproduces:
        return REPRODUCES
    if p_fails < alpha_fails:
        return DOES_NOT_REPRODUCE
    return INCONCLUSIVE


def judge_difference(estimate_95: Estimate, margin: float = 0.0, min_effect: float = 0.0) -> Judgement:
    """The boundary is b = min_effect − margin (a superiority claim's smallest effect of interest, or a non-inferiority
    claim's −m). Reproduces when the whole 95% interval lies above b (one-sided p < 0.025); does not when it lies wholly
    below b, or when the seeds agree exactly (zero spread) on an effect not above b."""
    low, high = estimate_95.low, estimate_95.high
    if not estimate_95.decidable:
        return Judgement(INCONCLUSIVE, low, high, estimate_95.level, None)
    boundary = min_effect - margin
    p_rep, p_fail = p_above(estimate_95, boundary), p_below(estimate_95, boundary)
    verdict = verdict_of(p_rep, p_fail, ALPHA, ALPHA)
    needed = None
    if verdict == INCONCLUSIVE:
        needed = seeds_needed(abs(estimate_95.effect - boundary), estimate_95.spreads, estimate_95.level, estimate_95.paired)
    return Judgement(verdict, low, high, estimate_95.level, needed, p_rep, p_fail)


def judge_equivalence(estimate_90: Estimate, estimate_95: Estimate, margin: float) -> Judgement:
    """Two one-sided tests: equivalent when the 90% interval lies inside (−margin, margin) (both one-sided p < 0.05);
    not equivalent when the 95% interval lies wholly outside [−margin, margin] (the nearer one-sided p < 0.025) or when
    the seeds agree exactly on an effect at or beyond a margin."""
    if not estimate_95.decidable:
        return Judgement(INCONCLUSIVE, estimate_90.low, estimate_90.high, estimate_90.level, None)
    if estimate_95.constant:
        inside = abs(estimate_95.effect) < margin
        p_rep, p_fail = (0.0, 1.0) if inside else (1.0, 0.0)
    else:
        p_rep = max(p_above(estimate_90, -margin), p_below(estimate_90, margin))
        p_fail = min(p_above(estimate_95, margin), p_below(estimate_95, -margin))
    verdict = verdict_of(p_rep, p_fail, EQUIVALENCE_ALPHA, ALPHA)
    if verdict == DOES_NOT_REPRODUCE:
        return Judgement(verdict, estimate_95.low, estimate_95.high, estimate_95.level, None, p_rep, p_fail,
                         EQUIVALENCE_ALPHA)
    needed = None
    if verdict == INCONCLUSIVE:
        effect = abs(estimate_90.effect)
        if effect < margin:  # more seeds would narrow the 90% interval into the margins
            needed = seeds_needed(margin - effect, estimate_90.spreads, EQUIVALENCE_LEVEL, estimate_90.paired)
        else:  # ... or the 95% interval out of them
            needed = seeds_needed(effect - margin, estimate_95.spreads, LEVEL, estimate_95.paired)
    return Judgement(verdict, estimate_90.low, estimate_90.high, estimate_90.level, needed, p_rep, p_fail, EQUIVALENCE_ALPHA)


def combine(verdicts: Sequence[str], rule: str = "all") -> str:
    """A claim of several comparisons, judged on those that ran. ``all``: reproduces when every one does, does not
    when any does not. ``any``: reproduces when at least one does, does not when every one does not. A comparison
    whose groups are insufficient makes the claim insufficient unless the others decide it alone."""
    verdicts = [verdict for verdict in verdicts if verdict != NOT_RUN]
    if not verdicts:
        return NOT_RUN
    if rule == "any":
        if REPRODUCES in verdicts:
            return REPRODUCES
        if INSUFFICIENT in verdicts:
            return INSUFFICIENT
        return DOES_NOT_REPRODUCE if all(verdict == DOES_NOT_REPRODUCE for verdict in verdicts) else INCONCLUSIVE
    if DOES_NOT_REPRODUCE in verdicts:
        return DOES_NOT_REPRODUCE
    if INSUFFICIENT in verdicts:
        return INSUFFICIENT
    return REPRODUCES if all(verdict == REPRODUCES for verdict in verdicts) else INCONCLUSIVE


def holm_verdicts(judgements: Sequence[Judgement], rule: str) -> list[str]:
    """The verdicts of a claim's comparisons corrected for multiplicity. The direction in which one comparison decides
    the claim (``any``: one that reproduces; ``all``: one that does not) is a union of k tests: its p-values are
    Holm-adjusted. The other direction needs every comparison (an intersection–union test) and stays unadjusted."""
    p_rep = [judgement.p_reproduces for judgement in judgements]
    p_fail = [judgement.p_fails for judgement in judgements]
    if rule == "any":
        p_rep = holm(p_rep)
    else:
        p_fail = holm(p_fail)
    return [verdict_of(rep, fail, judgement.alpha_reproduces, judgement.alpha_fails)
            if math.isfinite(rep) and math.isfinite(fail) else judgement.verdict
            for judgement, rep, fail in zip(judgements, p_rep, p_fail)]


def spearman_per_seed(levels: Sequence[float], values: Sequence[float]) -> float:
    """Spearman's ρ of ``values`` over the ordered ``levels``: NaN when the levels are constant, 0 when the values are
    (a metric that does not move with the levels has no trend: a known ρ of 0, not a missing one)."""
    if len(set(levels)) < 2:
        return math.nan
    if len(set(values)) < 2:
        return 0.0
    return float(stats.spearmanr(levels, values).statistic)
