"""The claims of the source documents that the harness checks, and the one rule that judges them all.

A claim is data (``Claim``; the claims themselves are ``claim_registry.CLAIMS``): the experiment
``kind`` that tests it (optionally only some experiments of it), the tidy table of that kind it
reads (a role of ``PIPELINES[kind].tables``), the rows every group is drawn from (``where``), the
rows of the group the claim favours (``treatment``) and of the group it is compared with
(``baseline``), the value compared (``metric``: a column, or a ``DataFrame.eval`` expression of
columns) and whether larger is better. Selectors are ``{column: wanted}`` where ``wanted`` is a value
(equal), a list (any of) or ``{operator: value}`` with an operator of ``OPERATORS`` (several are all
required) and, optionally, ``"best": column``: among the rows the other operators keep, the value of
this column with the highest mean of ``column`` over seeds, chosen separately for every combination
of the other cell axes (``{"alpha": {">": 1, "best": "val_accuracy"}}``: the α > 1 chosen on
validation accuracy per method, variant and sparsity).

Shapes of a claim (``Claim.comparisons``): one treatment against one baseline; several (a tuple of
selectors on either side: each against each, or pairwise when both have the same length); an
ordering (``order``: adjacent pairs); one comparison per value of a column (``split``); a trend
(``trend``: the metric's Spearman ρ over the ordered values of a column, per seed). Each comparison
is judged by the rule of ``statistics`` (printed on the page as ``VERDICT_RULE``); a claim of several
comparisons reproduces when all do (``combine = "all"``) or when one does (``"any"``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench_powerprop.cells import CELL_COLUMNS
from bench_powerprop.io import read_json, write_text_atomic
from bench_powerprop.pipelines import PIPELINES
from bench_powerprop.reporting import convergence as conv
from bench_powerprop.reporting import stability
from bench_powerprop.reporting import statistics as st
from bench_powerprop.reporting.claim_types import (
    BEST,
    OPERATORS,
    Claim,
    Selectors,
    as_tuple,
    describe,
    value_text,
)
from bench_powerprop.reporting.pages import html_fragment, html_page, markdown_table, write_table_page
from bench_powerprop.reporting.rows import DIVERGED, read_table

FINGERPRINTS = ("init_fingerprint", "batch_fingerprint")
REPOSITORY = Path(__file__).resolve().parents[2]

REPRODUCES, DOES_NOT_REPRODUCE, INCONCLUSIVE, NOT_RUN = st.REPRODUCES, st.DOES_NOT_REPRODUCE, st.INCONCLUSIVE, st.NOT_RUN

VERDICT_RULE = f"""\
**The rule.** A claim compares groups of rows of one experiment's tidy table (the selectors are in its section's \
"compared" line). The seed is the unit of replication: a seed's value is the mean of the metric over the group's rows \
of that seed. Every effect is signed so that a positive effect is the direction the claim states. A claim is \
**paired** by seed when its groups share, seed for seed, the initial weights θ₀ and the batch order (the harness \
checks both fingerprints of every cell, `init_fingerprint` and `batch_fingerprint`, and refuses the pairing — judging \
the claim unpaired, with a note — when any seed's cells differ): the effect is the mean per-seed difference d̄ and its \
95% interval d̄ ± t(0.975, n−1)·s/√n (s the sd of the n differences). **Unpaired** groups get Welch's interval, mean \
difference ± t(0.975, ν)·√(s²ₜ/nₜ + s²ᵦ/nᵦ) with Welch–Satterthwaite ν. Quantiles and intervals come from `scipy.stats`.

1. **Every seed asked for counts.** A group with fewer valid seeds than the config asks for (the seeds its rows \
have) is **{st.INSUFFICIENT}**, never judged. Diverged runs are outcomes, not dropouts: a run that diverged counts at \
the value it reached, or, when it reached none, at the claim's declared worst case (accuracy claims: chance, 10%); a \
claim with no worst case and a diverged seed is {st.INSUFFICIENT}. The "diverged" column gives each group's \
diverged seeds / seeds.
2. **Zero spread decides.** Seeds whose effects agree to rounding have a known effect: the interval is the point, and \
the verdict follows from it (a ρ of 0 in every seed does not reproduce "grows with α").
3. **The smallest effect of interest.** Every claim declares the effect that would matter (its own column): \
**{REPRODUCES}** needs the whole 95% interval beyond it (one-sided p < 0.025); **{DOES_NOT_REPRODUCE}** when the interval \
lies wholly short of it (the effect is absent or too small to matter), or the seeds agree exactly on an effect not \
beyond it; **{INCONCLUSIVE}** otherwise. "At least as well" / "≥" claims are non-inferiority tests: the boundary is \
−m. **Equivalence** ("the same accuracy", ±m): two one-sided tests — {REPRODUCES} when the 90% interval lies inside \
(−m, m), {DOES_NOT_REPRODUCE} when the 95% interval lies wholly outside [−m, m].
4. **Multiplicity.** A claim of several comparisons (several methods, an ordering A ≥ B ≥ C, several scorers) is \
decided by all of them ("all-of") or by any one ("any-of"). The direction a single comparison decides — any-of: one \
that reproduces; all-of: one that does not — is a union of k tests, so its one-sided p-values are **Holm**-adjusted \
(sorted, p₍ᵢ₎·(k − i + 1), made monotone); the other direction needs every comparison (an intersection–union test) \
and is read unadjusted. A claim that holds "down to some level" picks the level on **validation** data — the \
sparsest level at which the test holds on validation accuracy, the first when none does — and is judged on test \
accuracy at that level alone; the other levels are shown beside it.
5. **Pooled claims show their parts.** A claim that pools several α, sparsities or levels shows each one's row beside \
the pooled verdict ("shown beside": not part of the verdict, not corrected for multiplicity).

* **Converged before judged:** per cell, {conv.CRITERION}. A verdict drawn from a group with an unconverged cell is \
marked ⚠ unconverged.
* **Verdict stability:** {stability.METHOD}: the probability that the claim gets the same verdict on a resample of its \
seeds (the same draw for every group and comparison). Low stability: another machine or another seed set could \
overturn the verdict.
* **Trend** (a metric grows with α): per seed, Spearman's ρ between the ordered levels and the seed's value at each \
level (a metric constant over the levels: ρ = 0); the effect is the mean ρ over seeds with its 95% t-interval.
* **Chosen on validation** (a group "α of the best mean val_accuracy"): among the group's candidates, the value with \
the highest mean validation accuracy over seeds is chosen separately for every method, variant, sparsity and level, \
before the test metric is read; the note lists what was chosen.
* **Seeds needed** (inconclusive rows): the smallest n per group with t(q, df(n))·SE(n) < D, where D is the observed \
effect's distance from the boundary the interval must clear, SE(n) = s/√n paired (df n−1) or √((s²ₜ + s²ᵦ)/n) \
unpaired (Welch df at n per group), q = 0.975 (0.95 for the 90% interval), at the observed effect and spreads.
* **{NOT_RUN}**: no active experiment is of the claim's kind (or one it names), its table is missing, or none of \
its rows match; the note says which, and names the shipped config that would run it.
"""


def matching(values: pd.Series, wanted: Any) -> pd.Series:
    if isinstance(wanted, Mapping):
        unknown = set(wanted) - set(OPERATORS) - {BEST}
        if unknown:
            raise ValueError(f"unknown selector operator(s) {sorted(unknown)} (known: {', '.join(OPERATORS)}, {BEST})")
        keep = pd.Series(True, index=values.index)
        for op, value in wanted.items():
            if op != BEST:
                keep &= OPERATORS[op](values, value)
        return keep
    if isinstance(wanted, list | tuple):
        return values.isin(wanted)
    return values == wanted


def best_of(rows: pd.DataFrame, column: str, by: str) -> pd.DataFrame:
    """The rows of the ``column`` value with the highest mean ``by``, per combination of the other cell axes."""
    within = [name for name in CELL_COLUMNS if name in rows.columns and name not in (column, "seed")]
    means = rows.groupby([*within, column], dropna=False)[by].mean().reset_index()
    chosen = means.loc[means.dropna(subset=[by]).groupby(within, dropna=False)[by].idxmax()]
    return rows.merge(chosen[[*within, column]], on=[*within, column])


def select(rows: pd.DataFrame, selectors: Selectors, claim: Claim) -> pd.DataFrame:
    missing = [column for column in selectors if column not in rows.columns]
    if missing:
        raise KeyError(f"claim {claim.key!r}: the {claim.kind} table {claim.table!r} has no column(s) {missing}")
    keep = pd.Series(True, index=rows.index)
    for column, wanted in selectors.items():
        keep &= matching(rows[column], wanted)
    chosen = rows[keep]
    for column, wanted in selectors.items():
        if isinstance(wanted, Mapping) and BEST in wanted:
            chosen = best_of(chosen, column, wanted[BEST])
    return chosen


def matched(treatment: pd.DataFrame, baseline: pd.DataFrame, columns: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not columns:
        return treatment, baseline
    common = treatment[list(columns)].drop_duplicates().merge(baseline[list(columns)].drop_duplicates())
    return treatment.merge(common), baseline.merge(common)


def metric_values(rows: pd.DataFrame, claim: Claim) -> pd.Series:
    """The claim's metric on every row: a column, or an expression of columns (``DataFrame.eval``)."""
    if claim.metric in rows.columns:
        return rows[claim.metric]
    try:
        return rows.eval(claim.metric).astype(float)
    except NameError as error:  # pandas' UndefinedVariableError: a column the table lacks
        raise KeyError(f"claim {claim.key!r}: the {claim.kind} table {claim.table!r} cannot give {claim.metric!r} "
                       f"({error})") from None


def unit_values(rows: pd.DataFrame, claim: Claim) -> pd.Series:
    """The metric on every row, a diverged run counted at the value it reached or, when it reached none, at the claim's
    declared worst case (``diverged_as``; without one it stays missing and its seed has no valid value)."""
    values = metric_values(rows, claim).astype(float)
    if claim.diverged_as is not None and "status" in rows.columns:
        values = values.mask((rows["status"] == DIVERGED) & values.isna(), claim.diverged_as)
    return values


def per_unit(rows: pd.DataFrame, claim: Claim) -> pd.Series:
    """Each replicate's mean of the metric over its rows (NaN-free), indexed by replicate."""
    return unit_values(rows, claim).groupby(rows[claim.unit]).mean().dropna()


def pairing_refusal(rows: pd.DataFrame, unit: str) -> str:
    """Why rows that should pair by ``unit`` do not (empty: every replicate's cells share θ₀ and batches)."""
    missing = [column for column in FINGERPRINTS if column not in rows.columns]
    if missing:
        return f"the table carries no {' / '.join(missing)}"
    for column in FINGERPRINTS:
        if rows[column].isna().any():
            return f"{column} is missing for some cells"
        differing = rows.groupby(unit)[column].nunique()
        differing = sorted(differing[differing > 1].index)
        if differing:
            return f"{column} differs between the compared cells of {unit} {', '.join(map(str, differing))}"
    return ""


def group_text(values: pd.Series, scale: float) -> str:
    if values.empty:
        return "—"
    spread = f" ± {scale * values.std(ddof=1):.3g}" if len(values) > 1 else ""
    return f"{scale * values.mean():.4g}{spread} (n={len(values)})"


#: the role of a comparison: it decides the claim, or it is shown beside it (a pooled claim's per-α / per-level rows,
#: the levels a "down to some level" claim did not pick)
DECIDES, BESIDE = "decides", "beside"
#: axes whose values a pooled group is also shown one by one (issue 28: P2's α = 1.25 beside the pooled α 1.25–5)
POOLED_AXES = ("alpha", "sparsity", "target_sparsity", "level")


@dataclass
class Part:
    """One judged comparison of a claim on one experiment."""

    label: str
    treatment: pd.DataFrame
    baseline: pd.DataFrame | None
    #: what a ``best`` selector chose, e.g. "alpha chosen on val_accuracy: 1.5 (3×), 2 (1×)"
    chosen: str = ""
    role: str = DECIDES
    #: the axis and value a per-value row stands for (``at_value``)
    axis: str = ""
    value: Any = None
    #: the comparison a per-value row belongs to (its label without the value)
    comparison: str = ""


def chosen_text(rows: pd.DataFrame, selectors: Selectors) -> str:
    """The values ``best`` selectors picked, counted over the configurations they were picked for."""
    texts = []
    for column, wanted in selectors.items():
        if isinstance(wanted, Mapping) and BEST in wanted:
            within = [name for name in CELL_COLUMNS if name in rows.columns and name not in ("seed",)]
            counts = rows.drop_duplicates(subset=within)[column].value_counts().sort_index()
            picks = ", ".join(f"{value_text(value)} ({count}×)" for value, count in counts.items())
            texts.append(f"{column} chosen on {wanted[BEST]}: {picks or 'none'}")
    return "; ".join(texts)


def distinct(selectors: Selectors, others: list[Selectors]) -> Selectors:
    """The selectors that not every one of ``others`` shares (what tells this comparison from the rest)."""
    return {column: wanted for column, wanted in selectors.items() if any(other.get(column) != wanted for other in others)}


def part_label(treatment: Selectors, baseline: Selectors, comparisons: list[tuple[Selectors, Selectors]]) -> str:
    """``variant = snip vs variant = snip_shuffled``; what all comparisons share is left out (``vs method = rigl``)."""
    ours = describe(distinct(treatment, [t for t, _ in comparisons]))
    theirs = describe(distinct(baseline, [b for _, b in comparisons]))
    return " vs ".join(part for part in (ours, theirs) if part) if ours else f"vs {theirs}"


def at_value(part: Part, column: str, value, role: str = BESIDE) -> Part:
    """The comparison restricted to one value of ``column`` (the baseline too where it has that value)."""
    baseline = part.baseline
    if baseline is not None and column in baseline.columns and (baseline[column] == value).any():
        baseline = baseline[baseline[column] == value]
    label = f"{part.label}: " if part.label else ""
    return Part(f"{label}{column} = {value_text(value)}", part.treatment[part.treatment[column] == value], baseline,
                role=role, axis=column, value=value, comparison=part.label)


def pooled_rows(part: Part, selectors: Selectors) -> list[Part]:
    """One row beside the pooled comparison per value of every pooled axis (not of an axis chosen on validation)."""
    beside = []
    for column in POOLED_AXES:
        wanted = selectors.get(column)
        if column not in part.treatment.columns or (isinstance(wanted, Mapping) and BEST in wanted):
            continue
        values = sorted(part.treatment[column].dropna().unique())
        if len(values) > 1:
            beside += [at_value(part, column, value) for value in values]
    return beside


def parts_of(claim: Claim, pool: pd.DataFrame) -> list[Part]:
    if claim.trend:
        return [Part(f"trend over {claim.trend}", select(pool, as_tuple(claim.treatment)[0], claim), None)]
    parts = []
    several = len(claim.comparisons()) > 1
    for treatment_selectors, baseline_selectors in claim.comparisons():
        treatment = select(pool, treatment_selectors, claim)
        baseline = select(pool, baseline_selectors, claim)
        treatment, baseline = matched(treatment, baseline, claim.matched_on)
        label = part_label(treatment_selectors, baseline_selectors, claim.comparisons()) if several else ""
        whole = Part(label, treatment, baseline, chosen_text(treatment, treatment_selectors))
        if not claim.split:
            parts += [whole, *pooled_rows(whole, treatment_selectors)]
            continue
        parts += [at_value(whole, claim.split, value, DECIDES) for value in sorted(treatment[claim.split].dropna().unique())]
    return parts


@dataclass(frozen=True)
class Sample:
    """The per-seed values a comparison is judged on (``{seed: value}``, paired groups in the same seed order), and
    the seeds each group was asked for. Plain dicts: the verdict-stability bootstrap redraws them thousands of times."""

    treatment: dict
    #: None for a trend (``treatment`` then holds each seed's signed ρ)
    baseline: dict | None
    paired: bool
    pairing: str
    #: the seeds each group's rows have, diverged runs included: what the config asked for
    asked: tuple[frozenset, frozenset]

    def valid(self) -> bool:
        """Every seed asked for has a valid value (rule 1: otherwise the comparison is insufficient)."""
        baseline_ok = self.baseline is None or self.baseline.keys() >= self.asked[1]
        return self.treatment.keys() >= self.asked[0] and baseline_ok

    def resampled(self, seeds: list) -> Sample:
        """The sample on a resample of the seeds (with repeats): each drawn seed becomes a replicate of its own."""
        def draw(values: dict) -> dict:
            return {index: values[seed] for index, seed in enumerate(seeds) if seed in values}

        def asked(units: frozenset) -> frozenset:
            return frozenset(index for index, seed in enumerate(seeds) if seed in units)

        baseline = None if self.baseline is None else draw(self.baseline)
        return Sample(draw(self.treatment), baseline, self.paired, self.pairing, (asked(self.asked[0]), asked(self.asked[1])))


def units_of(rows: pd.DataFrame | None, claim: Claim) -> frozenset:
    return frozenset() if rows is None or rows.empty else frozenset(rows[claim.unit].dropna().unique())


def sample_of(claim: Claim, part: Part, metric: str = "") -> Sample:
    """The comparison's per-seed values (of ``metric`` instead of the claim's, e.g. the validation metric a level is
    picked on); paired ones aligned on the seeds both groups have."""
    claim = replace(claim, metric=metric) if metric else claim
    asked = (units_of(part.treatment, claim), units_of(part.baseline, claim))
    if claim.trend:
        rhos, pairing = trend_values(claim, part.treatment)
        refused = pairing.startswith("pairing refused")
        return Sample(rhos.to_dict(), None, not refused, pairing, (frozenset(), frozenset()) if refused else asked)
    treatment, baseline = per_unit(part.treatment, claim), per_unit(part.baseline, claim)
    if not claim.paired:
        return Sample(treatment.to_dict(), baseline.to_dict(), False, "unpaired (Welch)", asked)
    refusal = pairing_refusal(pd.concat([part.treatment, part.baseline]), claim.unit)
    if refusal:
        return Sample(treatment.to_dict(), baseline.to_dict(), False, f"pairing refused ({refusal}): unpaired (Welch)", asked)
    common = treatment.index.intersection(baseline.index)
    lost = sorted(set(asked[0]).symmetric_difference(asked[1]))
    note = f"paired by {claim.unit}" + (f" ({claim.unit} {', '.join(map(str, lost))} in one group only: left out)" if lost else "")
    both = asked[0] & asked[1]
    return Sample(treatment.loc[common].to_dict(), baseline.loc[common].to_dict(), True, note, (both, both))


def trend_values(claim: Claim, rows: pd.DataFrame) -> tuple[pd.Series, str]:
    """Each seed's signed Spearman ρ over the trend column; a seed missing a level's value has none."""
    refusal = pairing_refusal(rows, claim.unit) if claim.paired else "the claim is declared unpaired"
    if refusal:  # no trend to judge (inconclusive), not a lack of seeds
        return pd.Series(dtype=float), f"pairing refused ({refusal}): no per-seed trend"
    values = rows.assign(_value=unit_values(rows, claim))
    means = values.groupby([claim.unit, claim.trend])["_value"].mean().reset_index()
    levels = means[claim.trend].nunique()
    sign = 1.0 if claim.higher_is_better else -1.0
    rhos = {seed: sign * st.spearman_per_seed(group[claim.trend].tolist(), group["_value"].tolist())
            for seed, group in means.dropna(subset=["_value"]).groupby(claim.unit) if group[claim.trend].nunique() == levels}
    return pd.Series(rhos, dtype=float).dropna(), f"per-seed Spearman ρ over {claim.trend}, paired by {claim.unit}"


def estimate_of(claim: Claim, sample: Sample, level: float = st.LEVEL) -> st.Estimate:
    treatment = np.fromiter(sample.treatment.values(), float, len(sample.treatment))
    if sample.baseline is None:
        if not sample.paired:
            return st.nan_estimate(True, len(treatment), len(treatment), math.nan, treatment)
        return st.paired_estimate(treatment, level)
    sign = 1.0 if claim.higher_is_better else -1.0
    baseline = np.fromiter(sample.baseline.values(), float, len(sample.baseline))
    return st.estimate(sign * treatment, sign * baseline, sample.paired, level)


def judge_sample(claim: Claim, sample: Sample) -> tuple[st.Estimate, st.Judgement]:
    """The estimate and the single-comparison verdict; "insufficient" when a group lacks a seed it was asked for."""
    estimate = estimate_of(claim, sample)
    if claim.test == st.EQUIVALENCE and not claim.trend:
        judgement = st.judge_equivalence(estimate_of(claim, sample, st.EQUIVALENCE_LEVEL), estimate, claim.margin)
    else:
        judgement = st.judge_difference(estimate, claim.margin, claim.min_effect or 0.0)
    if not sample.valid():
        judgement = st.Judgement(st.INSUFFICIENT, judgement.low, judgement.high, judgement.level, None)
    return estimate, judgement


def pick(claim: Claim, picking: Sequence[Sample]) -> int:
    """The index of the split value a "down to some level" claim is judged at: the sparsest (last) whose test holds on
    the validation metric; the first when none does."""
    holding = [index for index, sample in enumerate(picking) if judge_sample(claim, sample)[1].verdict == REPRODUCES]
    return holding[-1] if holding else 0


def decide(claim: Claim, samples: Sequence[Sample], roles: Sequence[str],
           picking: Sequence[Sample] = ()) -> tuple[list[str], list[str], list[st.Judgement], str]:
    """Roles, verdicts and judgements of a claim's comparisons on one experiment, and the claim's verdict: the
    comparisons that decide it are Holm-corrected together (``statistics.holm_verdicts``); a level picked on validation
    data decides alone."""
    roles = list(roles)
    if picking:
        chosen = pick(claim, picking)
        roles = [DECIDES if index == chosen else BESIDE for index in range(len(roles))]
    judgements = [judge_sample(claim, sample)[1] for sample in samples]
    verdicts = [judgement.verdict for judgement in judgements]
    deciding = [index for index, role in enumerate(roles) if role == DECIDES]
    rule = "all" if picking else claim.combine
    corrected = st.holm_verdicts([judgements[index] for index in deciding], rule)
    for index, verdict in zip(deciding, corrected):
        verdicts[index] = verdict
    return roles, verdicts, judgements, st.combine([verdicts[index] for index in deciding], rule)


def diverged_text(part: Part, claim: Claim) -> str:
    """Diverged seeds over the seeds of each group (issue 28: a divergence rate per claim)."""
    def rate(rows: pd.DataFrame | None) -> str:
        if rows is None or rows.empty or "status" not in rows.columns:
            return "—"
        diverged = rows.loc[rows["status"] == DIVERGED, claim.unit].nunique()
        return f"{diverged}/{rows[claim.unit].nunique()}"

    return f"{rate(part.treatment)} / {rate(part.baseline)}" if part.baseline is not None else rate(part.treatment)


def converged_text(part: Part) -> str:
    """"yes" when every cell of both groups converged by the declared criterion (``convergence``), else how many did
    not; "—" when the table carries no convergence."""
    groups = [rows for rows in (part.treatment, part.baseline) if rows is not None and not rows.empty]
    if not groups or any(CONVERGED not in rows.columns for rows in groups):
        return "—"
    cells = pd.concat(groups).drop_duplicates(subset=[name for name in CELL_COLUMNS if name in groups[0].columns])
    unconverged, unknown = int((cells[CONVERGED] == 0).sum()), int(cells[CONVERGED].isna().sum())
    if unconverged:
        return f"no ({unconverged} of {len(cells)} cells)"
    if unknown:
        return "— (logs too short)" if unknown == len(cells) else f"yes ({unknown} of {len(cells)} logs too short)"
    return "yes"


CONVERGED = conv.CONVERGED


def record(claim: Claim, part: Part, sample: Sample, judgement: st.Judgement, verdict: str, role: str) -> dict:
    estimate = estimate_of(claim, sample)
    scale = 1.0 if claim.trend else claim.scale
    if claim.trend:
        groups = {"treatment": f"{part.treatment[claim.trend].nunique()} levels of {claim.trend}", "baseline": "—"}
    else:
        groups = {"treatment": group_text(pd.Series(sample.treatment, dtype=float), claim.scale),
                  "baseline": group_text(pd.Series(sample.baseline, dtype=float), claim.scale)}
    return {
        **groups, "verdict": verdict, "role": role, "pairing": sample.pairing, "part": part.label,
        "effect": scale * estimate.effect, "low": scale * judgement.low, "high": scale * judgement.high,
        "axis": part.axis, "axis_value": part.value, "comparison": part.comparison if part.axis else part.label,
        "level": judgement.level, "df": estimate.df, "n_treatment": len(sample.treatment),
        "n_baseline": len(sample.treatment) if sample.baseline is None else len(sample.baseline),
        "asked": "/".join(str(len(units)) for units in (sample.asked if sample.baseline is not None else sample.asked[:1])),
        "seeds_needed": judgement.seeds_needed if judgement.seeds_needed is not None else math.nan,
        "p_reproduces": judgement.p_reproduces, "p_fails": judgement.p_fails,
        "diverged": diverged_text(part, claim), "converged": converged_text(part),
        "seed_effects": json.dumps([round(scale * value, 6) for value in estimate.seed_effects]),
        "note": part.chosen,
    }


@dataclass
class Judged:
    """A claim's comparisons on one experiment: those with both groups (and their samples), those without."""

    present: list[Part]
    samples: list[Sample]
    #: the samples of the validation metric a "down to some level" claim picks its level on (else empty)
    picking: list[Sample]
    missing: list[Part]


def judged(claim: Claim, rows: pd.DataFrame) -> Judged:
    pool = select(rows, claim.where, claim)
    parts = [part for part in parts_of(claim, pool) if not part.treatment.empty or part.role == DECIDES]
    complete = [not part.treatment.empty and (part.baseline is None or not part.baseline.empty) for part in parts]
    present = [part for part, ok in zip(parts, complete) if ok]
    picking = [sample_of(claim, part, claim.pick_on) for part in present] if claim.split and claim.pick_on else []
    return Judged(present, [sample_of(claim, part) for part in present], picking,
                  [part for part, ok in zip(parts, complete) if not ok])


def judge(claim: Claim, rows: pd.DataFrame) -> list[dict]:
    """One record per comparison of ``claim`` on one experiment's table."""
    return judge_found(claim, judged(claim, rows))


def verdict_stability(claim: Claim, found: Judged, observed: str) -> float:
    """The share of seed resamples (``stability``) on which the claim gets its observed verdict again."""
    if observed in (NOT_RUN, st.INSUFFICIENT) or not found.present:
        return math.nan
    roles = [part.role for part in found.present]
    deciding = [index for index, role in enumerate(roles) if role == DECIDES or found.picking]
    samples = [found.samples[index] for index in deciding]
    seeds = sorted(set().union(*(sample.asked[0] | sample.asked[1] for sample in samples)))

    def verdict_of(drawn: tuple) -> str:
        drawn = list(drawn)
        return decide(claim, [sample.resampled(drawn) for sample in samples], [roles[index] for index in deciding],
                      [sample.resampled(drawn) for sample in found.picking])[3]

    return stability.stability(seeds, verdict_of, observed)


def judge_found(claim: Claim, found: Judged) -> list[dict]:
    if not found.present:
        return [not_run("no rows match the claim's groups")]
    roles, verdicts, judgements, verdict = decide(claim, found.samples, [part.role for part in found.present],
                                                  found.picking)
    results = [record(claim, part, sample, judgement, part_verdict, role) for part, sample, judgement, part_verdict, role
               in zip(found.present, found.samples, judgements, verdicts, roles)]
    if found.picking:
        chosen = found.present[roles.index(DECIDES)].label
        results = [{**result, "note": f"{chosen} picked on {claim.pick_on} (the sparsest {claim.split} where the test "
                                      f"holds on it; the first when none does)"} for result in results]
    elif claim.split and claim.combine == "any":
        holding = [result["part"] for result in results if result["verdict"] == REPRODUCES]
        note = f"sparsest {holding[-1]} where it holds (Holm-corrected)" if holding else f"holds at no {claim.split}"
        results = [{**result, "note": note} for result in results]
    results += [{**not_run("no rows match one of the groups"), "part": part.label, "role": part.role}
                for part in found.missing]
    return [{**result, "claim_verdict": verdict} for result in results]


def not_run(note: str) -> dict:
    return {"part": "", "treatment": "—", "baseline": "—", "effect": math.nan, "low": math.nan, "high": math.nan,
            "level": math.nan, "df": math.nan, "n_treatment": 0, "n_baseline": 0, "asked": "", "seeds_needed": math.nan,
            "p_reproduces": math.nan, "p_fails": math.nan, "diverged": "—", "converged": "—", "role": DECIDES,
            "axis": "", "axis_value": math.nan, "comparison": "",
            "seed_effects": "[]", "pairing": "—", "verdict": NOT_RUN, "claim_verdict": NOT_RUN, "note": note}


#: ``(experiment, kind, table role) -> rows``: how ``evaluate`` reads an experiment's table
TableReader = Callable[[str, str, str], pd.DataFrame]


def with_fingerprints(rows: pd.DataFrame, read: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """A table without the pairing fingerprints (gradient norms, lottery solutions) takes them from the
    experiment's runs table, matched on the cell axes both have."""
    if all(column in rows.columns for column in FINGERPRINTS):
        return rows
    try:
        runs = read()
    except (OSError, KeyError):
        return rows
    if not all(column in runs.columns for column in FINGERPRINTS):
        return rows
    keys = [column for column in CELL_COLUMNS if column in rows.columns and column in runs.columns]
    cells = runs[[*keys, *FINGERPRINTS]].drop_duplicates(subset=keys)
    return rows.merge(cells, on=keys, how="left")


def runs_with_note(claim: Claim) -> str:
    if not claim.runs_with:
        return ""
    shipped = (REPOSITORY / claim.runs_with).is_file()
    return f"; runs with `{claim.runs_with}`" + ("" if shipped else " (not shipped)")


def claim_records(claim: Claim, experiments: Mapping[str, str], read_table: TableReader) -> list[dict]:
    testing = [name for name, kind in experiments.items() if kind == claim.kind and claim.tests_experiment(name)]
    if not testing:
        named = f" named {', '.join(claim.experiments)}" if claim.experiments else ""
        return [{**not_run(f"no active experiment of kind {claim.kind!r}{named}{runs_with_note(claim)}"), "experiment": "—"}]
    records = []
    for name in testing:
        try:
            rows = read_table(name, claim.kind, claim.table)
        except (OSError, KeyError, ValueError) as error:
            records.append({**not_run(f"table {claim.table!r} of {name} is missing ({error})"), "experiment": name})
            continue
        if claim.paired and claim.table != "runs":
            rows = with_fingerprints(rows, lambda experiment=name: read_table(experiment, claim.kind, "runs"))
        try:
            found = judged(claim, rows)
            results = judge_found(claim, found)
            share = verdict_stability(claim, found, results[0]["claim_verdict"])
        except KeyError as error:
            results, share = [not_run(str(error).strip("'\""))], math.nan
        records += [{**result, "experiment": name, "stability": share} for result in results]
    return records


def evaluate(claims: Iterable[Claim], experiments: Mapping[str, str], read_table: TableReader,
             settings: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per (claim, active experiment testing it, comparison); one "not run" row for a claim no experiment tests.

    ``experiments`` maps each active experiment to its kind, ``settings`` to the data and model it ran (shown on every
    verdict).
    """
    records = []
    for claim in claims:
        base = {"key": claim.key, "claim": claim.text, "source": claim.source, "compared": claim.compared(),
                "unit": "ρ" if claim.trend else claim.unit_text, "test": "trend" if claim.trend else claim.test,
                "margin": (0.0 if claim.trend else claim.scale) * claim.margin, "scale_note": claim.scale_note,
                "smallest_effect": claim.smallest_effect_text(),
                "min_effect_value": (1.0 if claim.trend else claim.scale) * (claim.min_effect or 0.0),
                "sentence": claim.sentence or claim.text,
                "quoted": bool(claim.sentence) and claim.quoted,
                "section": HARNESS_SECTION if claim.harness_check else CLAIMS_SECTION}
        for result in claim_records(claim, experiments, read_table):
            setting = (settings or {}).get(result["experiment"], "—")
            records.append({"claim_verdict": result["verdict"], **base, **result, "setting": setting})
    return pd.DataFrame(records, columns=CLAIM_COLUMNS)


CLAIMS_SECTION, HARNESS_SECTION = "claims of the sources", "harness sanity checks"
CLAIM_COLUMNS = ["key", "claim", "section", "experiment", "setting", "part", "role", "axis", "axis_value",
                 "comparison", "verdict", "claim_verdict", "stability", "test", "pairing", "n_treatment",
                 "n_baseline", "asked", "diverged", "converged", "effect", "low", "high", "level", "df", "unit",
                 "margin", "smallest_effect", "min_effect_value", "p_reproduces", "p_fails", "seeds_needed",
                 "seed_effects", "treatment", "baseline", "compared", "scale_note", "source", "sentence", "quoted",
                 "note"]


# -- the page ---------------------------------------------------------------------------------------
def number(value: float) -> str:
    return f"{value:+.3g}"


def effect_text(row: Mapping) -> str:
    if not math.isfinite(row["effect"]):
        return "—"
    unit = row["unit"] if isinstance(row["unit"], str) else ""
    return f"{number(row['effect'])} {unit}".rstrip()


def interval_text(row: Mapping) -> str:
    if not (math.isfinite(row["low"]) and math.isfinite(row["high"])):
        return "—"
    margin = f", margin ±{row['margin']:g}" if row["test"] == st.EQUIVALENCE else (
        f", margin −{row['margin']:g}" if row["margin"] else "")
    return f"[{number(row['low'])}, {number(row['high'])}] ({100 * row['level']:.0f}%{margin})"


def seeds_text(row: Mapping) -> str:
    if row["verdict"] != INCONCLUSIVE:
        return ""
    return "—" if not math.isfinite(row["seeds_needed"]) else f"{int(row['seeds_needed'])}"


def groups_text(row: Mapping) -> str:
    if not row["n_treatment"]:
        return "—"
    n = f"{row['n_treatment']}" if row["test"] == "trend" else f"{row['n_treatment']} / {row['n_baseline']}"
    asked = row.get("asked")
    return f"{n} (asked {asked.replace('/', ' / ')})" if isinstance(asked, str) and asked else n


def stability_text(value) -> str:
    return "—" if not isinstance(value, float) or not math.isfinite(value) else f"{100 * value:.0f}%"


def p_text(value) -> str:
    return "—" if not isinstance(value, float) or not math.isfinite(value) else f"{value:.2g}"


#: how a harness sanity check's verdict reads: it says nothing about a source
CHECK_WORDS = {REPRODUCES: "check passes", DOES_NOT_REPRODUCE: "check fails", INCONCLUSIVE: "check undecided"}


def verdict_text(row: Mapping, column: str = "claim_verdict") -> str:
    """The verdict as the page shows it: a harness check's in its own words, an unconverged group's flagged."""
    verdict = row[column]
    if row.get("section") == HARNESS_SECTION:
        verdict = CHECK_WORDS.get(verdict, verdict)
    flag = " ⚠ unconverged" if str(row.get("converged", "")).startswith("no") else ""
    return f"{verdict}{flag}"


def first_rows(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, experiment): its first deciding comparison, with the claim's verdict; an unconverged
    deciding comparison flags the claim."""
    deciding = results[results["role"] != BESIDE]
    unconverged = deciding.assign(_no=deciding["converged"].astype(str).str.startswith("no")).groupby(
        ["key", "experiment"], sort=False)["_no"].any()
    first = deciding.drop_duplicates(subset=["key", "experiment"]).copy()
    first["converged"] = [("no" if unconverged[(key, experiment)] else converged)
                          for key, experiment, converged in zip(first["key"], first["experiment"], first["converged"])]
    return first


def summary_effect(row: Mapping, comparisons: int) -> str:
    if comparisons != 1:
        return f"{comparisons} comparisons (Holm)"
    interval = interval_text(row)
    return effect_text(row) if interval == "—" else f"{effect_text(row)} {interval}"  # not run: "—", not "— —"


def overview(results: pd.DataFrame) -> pd.DataFrame:
    """The short table the report's front page shows: one row per (claim, experiment), its combined verdict, on the
    data and model it was reached at."""
    first = first_rows(results)
    parts = results[results["role"] != BESIDE].groupby(["key", "experiment"], sort=False).size()
    return pd.DataFrame({
        "claim": first["key"] + ": " + first["claim"], "experiment": first["experiment"], "data / model": first["setting"],
        "effect [interval]": [summary_effect(row, parts[(row["key"], row["experiment"])]) for row in first.to_dict("records")],
        "verdict": [verdict_text(row) for row in first.to_dict("records")],
    })


def overview_html(results: pd.DataFrame) -> str:
    """``overview`` as an HTML table fragment (the front page includes it raw: no reStructuredText parsing of claim texts)."""
    return html_fragment(markdown_table(overview(results)), OVERVIEW_CLASS)


OVERVIEW_CLASS = "claims-overview"


def at_a_glance(results: pd.DataFrame) -> str:
    """Every (claim, experiment) listed under its verdict: the ones that fail as visible as the ones that hold."""
    first = first_rows(results[results["section"] != HARNESS_SECTION])
    lines = []
    for verdict in (REPRODUCES, DOES_NOT_REPRODUCE, INCONCLUSIVE, st.INSUFFICIENT, NOT_RUN):
        chosen = first[first["claim_verdict"] == verdict]
        names = ", ".join(f"{key} ({experiment})" for key, experiment in zip(chosen["key"], chosen["experiment"]))
        if len(chosen) or verdict != st.INSUFFICIENT:
            lines.append(f"* **{verdict}** ({len(chosen)}): {names or 'none'}")
    return "\n".join(lines)


def anchor(key: str) -> str:
    return "claim-" + "".join(character if character.isalnum() else "-" for character in key.lower())


def verdict_table(results: pd.DataFrame) -> str:
    """The compact table: one row per (claim, experiment), short columns, the claim's text in its detail section."""
    first = first_rows(results)
    parts = results[results["role"] != BESIDE].groupby(["key", "experiment"], sort=False).size()
    records = first.to_dict("records")
    return markdown_table(pd.DataFrame({
        "claim": [f"[{row['key']}](#{anchor(row['key'])})" for row in records],
        "data / model": first["setting"], "experiment": first["experiment"],
        "verdict": [f"**{verdict_text(row)}**" for row in records],
        "effect [interval]": [summary_effect(row, parts[(row["key"], row["experiment"])]) for row in records],
        "smallest effect": first["smallest_effect"],
        "n (asked)": [groups_text(row) for row in records],
        "diverged": first["diverged"], "converged": first["converged"],
        "stability": [stability_text(row["stability"]) for row in records],
    }))


def detail_table(rows: pd.DataFrame) -> str:
    records = rows.to_dict("records")
    return markdown_table(pd.DataFrame({
        "comparison": [row["part"] or "the claim's groups" for row in records],
        "role": ["decides" if row["role"] != BESIDE else "shown beside" for row in records],
        "n (asked)": [groups_text(row) for row in records], "diverged": rows["diverged"],
        "converged": rows["converged"], "effect": [effect_text(row) for row in records],
        "interval": [interval_text(row) for row in records],
        "p (reproduces / fails)": [f"{p_text(row['p_reproduces'])} / {p_text(row['p_fails'])}" for row in records],
        "verdict": [verdict_text(row, "verdict") for row in records],
        "seeds needed": [seeds_text(row) for row in records],
        "treatment / baseline (mean ± sd)": [f"{row['treatment']} / {row['baseline']}" for row in records],
    }))


VERDICT_MARKS = {REPRODUCES: "✓", DOES_NOT_REPRODUCE: "✗", INCONCLUSIVE: "?", st.INSUFFICIENT: "insufficient"}


def axis_readings(rows: pd.DataFrame) -> list[str]:
    """One line per comparison and axis with per-value rows: each value's verdict in order, and where it holds
    ("sparsity: 0.8 ✓, 0.9 ✓, 0.95 ?, 0.98 ✗ — holds up to 0.9")."""
    lines = []
    per_value = rows[rows["axis"].astype(str) != ""]
    for (comparison, axis), unsorted in per_value.groupby(["comparison", "axis"], sort=False):
        group = unsorted.sort_values("axis_value")
        if len(group) < 2:
            continue
        pairs = list(zip(group["axis_value"], group["verdict"]))
        marks = ", ".join(f"{value_text(value)} {VERDICT_MARKS.get(verdict, '—')}" for value, verdict in pairs)
        holding = [value_text(value) for value, verdict in pairs if verdict == REPRODUCES]
        reading = f"holds at {', '.join(holding) or 'none'} of {len(group)}"
        lines.append(f"* By {axis}{f' ({comparison})' if comparison else ''}: {marks} — {reading}")
    return lines


def claim_section(rows: pd.DataFrame) -> str:
    """A claim's detail: its source sentence, what is compared, and every comparison on every experiment."""
    row = rows.iloc[0]
    kind = "quoted verbatim" if row["quoted"] else "paraphrase (the source's text is not available to the harness)"
    lines = [f'<a id="{anchor(row["key"])}"></a>\n', f"### {row['key']}: {row['claim']}\n",
             f"> {row['sentence']}\n", f"*{kind}* — {row['source']}\n",
             f"* **Compared:** {row['compared']}", f"* **Smallest effect of interest:** {row['smallest_effect']}",
             f"* **Scale:** {row['scale_note'] or '—'}"]
    for experiment, group in rows.groupby("experiment", sort=False):
        first = group.iloc[0]
        notes = "; ".join(dict.fromkeys(note for note in group["note"] if isinstance(note, str) and note))
        readings = "\n".join(axis_readings(group))
        lines += [f"\n**{experiment}** ({first['setting']}): **{verdict_text(first)}**, verdict stability "
                  f"{stability_text(first['stability'])}; {first['pairing']}" + (f". {notes}" if notes else "") + "\n",
                  *([readings + "\n"] if readings else []), detail_table(group)]
    return "\n".join(lines) + "\n"


def page_markdown(results: pd.DataFrame, figure_src: str = "") -> str:
    figure = f"![Forest plot: per claim, the per-seed effects (dots) and the interval (bar)]({figure_src})\n\n" if figure_src else ""
    sources = results[results["section"] != HARNESS_SECTION]
    checks = results[results["section"] == HARNESS_SECTION]
    text = (f"# Claims: what reproduced\n\n{at_a_glance(results)}\n\n"
            "Effects are in the metric's unit (pp: percentage points; ρ: Spearman's rank correlation). Each claim's "
            "source sentence, every comparison and the per-α / per-level rows are in its section below.\n\n"
            f"{figure}## Verdicts\n\n{verdict_table(sources)}\n\n{VERDICT_RULE}\n")
    if not checks.empty:
        text += (f"## Harness sanity checks\n\nChecks of the harness itself, not claims of a source: no verdict about a "
                 f"source is drawn from them.\n\n{verdict_table(checks)}\n\n")
    text += "## Claims in detail\n\n" + "\n".join(claim_section(group) for _, group in results.groupby("key", sort=False))
    return text


def table_reader(experiment_dirs: Mapping[str, Path], convergence: Mapping[str, pd.DataFrame] | None = None) -> TableReader:
    """Read an experiment's table from its results directory (``PIPELINES[kind].tables[role]`` inside it), with each
    row's cell ``converged`` flag where ``convergence`` has the experiment's cells."""

    def read(experiment: str, kind: str, role: str) -> pd.DataFrame:
        rows = read_table(experiment_dirs[experiment] / PIPELINES[kind].tables[role])
        cells = (convergence or {}).get(experiment)
        return rows if cells is None else conv.with_convergence(rows, cells)

    return read


def setting_text(manifest: Mapping) -> str:
    """The data and model an experiment ran: "digits / mlp_300_100"."""
    from bench_powerprop.reporting.published import model_key

    return f"{manifest['data']} / {model_key(manifest['model'])}"


def write_claims(manifest_paths: Iterable[Path], csv: Path, overview_path: Path, markdown_path: Path, page: Path,
                 figure: Path | None = None, claims: Iterable[Claim] | None = None) -> str:
    """Judge the claims (default ``claim_registry.CLAIMS``) on the experiments of these manifests (each beside its
    experiment's tables); the forest plot goes to ``figure`` and into the page. Returns the Markdown."""
    from bench_powerprop.reporting import forest
    from bench_powerprop.reporting.claim_registry import CLAIMS

    manifests = {Path(path).parent: read_json(path) for path in manifest_paths}
    experiments = {manifest["experiment"]: manifest["kind"] for manifest in manifests.values()}
    convergence = {manifest["experiment"]: conv.cell_convergence(manifest["cells"]) for manifest in manifests.values()}
    settings = {manifest["experiment"]: setting_text(manifest) for manifest in manifests.values()}
    reader = table_reader({manifest["experiment"]: folder for folder, manifest in manifests.items()}, convergence)
    results = evaluate(CLAIMS if claims is None else claims, experiments, reader, settings)
    text = page_markdown(results, figure.name if figure else "")
    write_table_page(results, text, "Claims: what reproduced", csv, markdown_path, page, CLAIMS_STYLE)
    if figure is not None:
        forest.save(forest.forest_figure(results), figure)
        write_text_atomic(page, html_page(page_markdown(results, forest.data_uri(figure)), "Claims: what reproduced",
                                          CLAIMS_STYLE))
    write_text_atomic(overview_path, overview_html(results))
    return text


#: the claims page at 1,400 px: tables take the page's width and wrap their cells instead of running off it
CLAIMS_STYLE = """
table { width: 100%; table-layout: auto; }
td { overflow-wrap: anywhere; }
th { overflow-wrap: normal; }  /* a header is one word or a few: never cut inside one ("clai m", "stabilit y") */
blockquote { margin: 0.5rem 0 0.25rem; padding-left: 0.75rem; border-left: 3px solid #9aa5b1; max-width: 70rem; }
img { max-width: 100%; height: auto; }
"""
