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
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench_powerprop.cells import CELL_COLUMNS
from bench_powerprop.io import read_json, write_text_atomic
from bench_powerprop.pipelines import PIPELINES
from bench_powerprop.reporting import statistics as st
from bench_powerprop.reporting.pages import html_fragment, html_page, markdown_table, write_table_page
from bench_powerprop.reporting.rows import DIVERGED

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
OPERATOR_TEXT = {"==": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"}
BEST = "best"
FINGERPRINTS = ("init_fingerprint", "batch_fingerprint")
REPOSITORY = Path(__file__).resolve().parents[2]

REPRODUCES, DOES_NOT_REPRODUCE, INCONCLUSIVE, NOT_RUN = st.REPRODUCES, st.DOES_NOT_REPRODUCE, st.INCONCLUSIVE, st.NOT_RUN

VERDICT_RULE = f"""\
**The rule.** A claim compares groups of rows of one experiment's tidy table (the selectors are in the "compared" \
column). The seed is the unit of replication: a seed's value is the mean of the metric over the group's rows of that \
seed, leaving out runs that diverged. Every effect is signed so that a positive effect is the direction the claim \
states. A claim is **paired** by seed when its groups share, seed for seed, the initial weights θ₀ and the batch order \
(the harness checks both fingerprints of every cell, `init_fingerprint` and `batch_fingerprint`, and refuses the \
pairing — judging the claim unpaired, with a note — when any seed's cells differ): the effect is the mean per-seed \
difference d̄ and its 95% interval d̄ ± t(0.975, n−1)·s/√n (s the sd of the n differences). **Unpaired** groups get \
Welch's interval, mean difference ± t(0.975, ν)·√(s²ₜ/nₜ + s²ᵦ/nᵦ) with Welch–Satterthwaite ν. Quantiles and \
intervals come from `scipy.stats`. Seeds whose values agree to rounding give no spread: the interval is then the \
point estimate itself. Fewer than 2 seeds per group give no interval: inconclusive.

* **Difference** (and "at least as well": a non-inferiority margin m ≥ 0): **{REPRODUCES}** when the whole 95% \
interval lies above −m; **{DOES_NOT_REPRODUCE}** when it lies wholly below −m; **{INCONCLUSIVE}** otherwise.
* **Equivalence** ("the same accuracy", margin ±m stated on the row): two one-sided tests — **{REPRODUCES}** \
(equivalent) when the 90% interval lies inside (−m, m); **{DOES_NOT_REPRODUCE}** when the 95% interval lies wholly \
outside [−m, m]; **{INCONCLUSIVE}** otherwise. The row shows the 90% interval unless it was decided by the 95% one.
* **Ordering** (A ≥ B ≥ C) and **several comparisons** (A beats each of B, C): every adjacent pair (every \
comparison) is its own row judged as a difference; the claim reproduces only when all of them do and does not \
reproduce when any does not. A claim that holds "down to some level" (lottery tickets) reproduces when at least one \
level does and names the sparsest.
* **Trend** (a metric grows with α): per seed, Spearman's ρ between the ordered levels and the seed's value at each \
level; the effect is the mean ρ over seeds with its 95% t-interval (n−1 df), judged as a difference from 0. A trend \
needs paired seeds: when the pairing is refused the row stays {INCONCLUSIVE}.
* **Chosen on validation** (a group "α of the best mean val_accuracy"): among the group's candidates, the value with \
the highest mean validation accuracy over seeds is chosen separately for every method, variant, sparsity and level, \
before the test metric is read; the note lists what was chosen.
* **Seeds needed** (inconclusive rows): the smallest n per group with t(q, df(n))·SE(n) < D, where D is the observed \
effect's distance from the boundary the interval must clear (|d̄ + m|; for equivalence m − |d̄| or |d̄| − m), \
SE(n) = s/√n paired (df n−1) or √((s²ₜ + s²ᵦ)/n) unpaired (Welch df at n per group), q = 0.975 (0.95 for the \
90% interval), at the observed effect and spreads. "—": fewer than 2 seeds, or an effect exactly on the boundary.
* **{NOT_RUN}**: no active experiment is of the claim's kind (or one it names), its table is missing, or none of \
its rows match; the note says which, and names the shipped config that would run it.
"""


Selectors = Mapping[str, Any]


def as_tuple(selectors: Selectors | tuple[Selectors, ...]) -> tuple[Selectors, ...]:
    return (selectors,) if isinstance(selectors, Mapping) else tuple(selectors)


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    #: the document, section, figure or table, and the reference code where there is one
    source: str
    #: the pipeline kind (``PIPELINES``) whose experiments test the claim
    kind: str
    metric: str
    treatment: Selectors | tuple[Selectors, ...] = field(default_factory=dict)
    baseline: Selectors | tuple[Selectors, ...] = field(default_factory=dict)
    where: Selectors = field(default_factory=dict)
    #: the role of the table in ``PIPELINES[kind].tables``
    table: str = "runs"
    higher_is_better: bool = True
    #: ``statistics.DIFFERENCE`` or ``statistics.EQUIVALENCE``
    test: str = st.DIFFERENCE
    #: in the metric's own units: the non-inferiority margin (difference) or ±margin (equivalence)
    margin: float = 0.0
    #: whether the groups share θ₀ and batches seed for seed (checked; refused pairings are judged unpaired)
    paired: bool = True
    #: an ordering, best first: every adjacent pair is one comparison
    order: tuple[Selectors, ...] = ()
    #: a trend of the metric over this column's ordered values (the rows of ``treatment``)
    trend: str = ""
    #: one comparison per value of this column among the treatment rows
    split: str = ""
    #: both groups keep only the combinations of these columns that both have (e.g. the same sparsities)
    matched_on: tuple[str, ...] = ()
    #: how the verdicts of several comparisons combine: "all" or "any"
    combine: str = "all"
    #: only these experiments of the kind test the claim (empty: every one); ``skip_experiments`` never do
    experiments: tuple[str, ...] = ()
    skip_experiments: tuple[str, ...] = ()
    #: how our setting differs from the source's (data, model, budget)
    scale_note: str = ""
    #: the config (relative to the repository) that runs the claim when no active experiment does
    runs_with: str = ""
    #: the column whose values are independent replicates
    unit: str = "seed"
    #: how the metric is shown: multiplied by ``scale``, followed by ``unit_text``
    scale: float = 100.0
    unit_text: str = "pp"
    metric_text: str = "test accuracy"
    #: the source's own sentence the claim tests: verbatim when ``quoted``, else a paraphrase (the page says which)
    sentence: str = ""
    quoted: bool = False
    #: the smallest effect of interest of a superiority claim (a difference or a trend with ``margin`` 0), in the
    #: metric's own units (ρ for a trend): "reproduces" needs the interval to clear it. Non-inferiority and
    #: equivalence claims declare theirs as ``margin``. None: undeclared (judged against 0, and the page says so)
    min_effect: float | None = None
    #: a sanity check of the harness, not a claim of a source: its own section on the page, no verdict about a source
    harness_check: bool = False
    #: the value a diverged run counts at when it reached no finite value of the metric (a declared worst case, e.g.
    #: chance accuracy); None: such a seed has no valid value (and its group may be "insufficient")
    diverged_as: float | None = None
    #: with ``split`` (a claim that holds "down to some level"): the split value is picked on this metric (validation
    #: data) — the sparsest value at which the claim's test holds on it — and the claim is judged on ``metric`` there
    pick_on: str = ""

    def comparisons(self) -> list[tuple[Selectors, Selectors]]:
        """(treatment, baseline) selector pairs; a trend is one comparison of ``treatment`` with nothing."""
        if self.order:
            return list(zip(self.order[:-1], self.order[1:]))
        treatments, baselines = as_tuple(self.treatment), as_tuple(self.baseline)
        if len(treatments) == len(baselines):
            return list(zip(treatments, baselines))
        if len(treatments) == 1:
            return [(treatments[0], baseline) for baseline in baselines]
        if len(baselines) == 1:
            return [(treatment, baselines[0]) for treatment in treatments]
        raise ValueError(f"claim {self.key!r}: {len(treatments)} treatments against {len(baselines)} baselines")

    def tests_experiment(self, name: str) -> bool:
        return (not self.experiments or name in self.experiments) and name not in self.skip_experiments

    def compared(self) -> str:
        shared = f" (rows with {describe(self.where)})" if self.where else ""
        better = "higher" if self.higher_is_better else "lower"
        if self.trend:
            groups = f"trend over {self.trend} of {describe(self.treatment) or 'every row'}"
        else:
            groups = "; ".join(f"{describe(t)} vs {describe(b)}" for t, b in self.comparisons())
        matched = f"; matched on {', '.join(self.matched_on)}" if self.matched_on else ""
        split = f"; one comparison per {self.split}" if self.split else ""
        return f"{self.metric_text} ({better} is the claim): {groups}{shared}{matched}{split}"


def value_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe(selectors: Selectors) -> str:
    """``alpha > 1, method ≠ dense``: the selectors in words, as the page prints them."""
    parts = []
    for column, wanted in selectors.items():
        if isinstance(wanted, Mapping):
            parts += [f"{column} {OPERATOR_TEXT[op]} {value_text(value)}" for op, value in wanted.items() if op != BEST]
            if BEST in wanted:
                parts.append(f"{column} of the best mean {wanted[BEST]}")
        elif isinstance(wanted, list | tuple):
            parts.append(f"{column} ∈ {{{', '.join(map(value_text, wanted))}}}")
        else:
            parts.append(f"{column} = {value_text(wanted)}")
    return ", ".join(parts)


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


def per_unit(rows: pd.DataFrame, claim: Claim) -> pd.Series:
    """Each replicate's mean of the metric over its rows (NaN-free), indexed by replicate."""
    return metric_values(rows, claim).groupby(rows[claim.unit]).mean().dropna()


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


@dataclass
class Part:
    """One judged comparison of a claim on one experiment."""

    label: str
    treatment: pd.DataFrame
    baseline: pd.DataFrame | None
    #: what a ``best`` selector chose, e.g. "alpha chosen on val_accuracy: 1.5 (3×), 2 (1×)"
    chosen: str = ""


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
        if not claim.split:
            parts.append(Part(label, treatment, baseline, chosen_text(treatment, treatment_selectors)))
            continue
        for value in sorted(treatment[claim.split].dropna().unique()):
            same = baseline[baseline[claim.split] == value]
            parts.append(Part(f"{claim.split} = {value_text(value)}", treatment[treatment[claim.split] == value],
                              same if len(same) else baseline))
    return parts


def paired_values(claim: Claim, part: Part) -> tuple[pd.Series, pd.Series, str]:
    """Per-seed values of both groups and the pairing note; aligned on common seeds when paired."""
    treatment, baseline = per_unit(part.treatment, claim), per_unit(part.baseline, claim)
    if not claim.paired:
        return treatment, baseline, "unpaired (Welch)"
    refusal = pairing_refusal(pd.concat([part.treatment, part.baseline]), claim.unit)
    if refusal:
        return treatment, baseline, f"pairing refused ({refusal}): unpaired (Welch)"
    common = treatment.index.intersection(baseline.index)
    lost = sorted(set(treatment.index).symmetric_difference(baseline.index))
    note = f"paired by {claim.unit}" + (f" ({claim.unit} {', '.join(map(str, lost))} in one group only: left out)" if lost else "")
    return treatment.loc[common], baseline.loc[common], note


def trend_estimate(claim: Claim, rows: pd.DataFrame) -> tuple[st.Estimate, str]:
    refusal = pairing_refusal(rows, claim.unit) if claim.paired else "the claim is declared unpaired"
    values = rows.assign(_value=metric_values(rows, claim))
    means = values.groupby([claim.unit, claim.trend])["_value"].mean().reset_index()
    sign = 1.0 if claim.higher_is_better else -1.0
    rhos = pd.Series({seed: sign * st.spearman_per_seed(group[claim.trend].tolist(), group["_value"].tolist())
                      for seed, group in means.groupby(claim.unit)}).dropna()
    if refusal:
        return st.nan_estimate(True, len(rhos), len(rhos), float(rhos.mean()) if len(rhos) else math.nan, rhos), (
            f"pairing refused ({refusal}): no per-seed trend")
    return st.paired_estimate(rhos.to_numpy()), f"per-seed Spearman ρ over {claim.trend}, paired by {claim.unit}"


def judge_part(claim: Claim, part: Part) -> dict:
    """The measured effect, interval and verdict of one comparison."""
    if claim.trend:
        estimate, pairing = trend_estimate(claim, part.treatment)
        judgement = st.judge_difference(estimate, 0.0)
        groups = {"treatment": f"{part.treatment[claim.trend].nunique()} levels of {claim.trend}", "baseline": "—"}
        return record(claim, estimate, judgement, pairing, groups)
    treatment, baseline, pairing = paired_values(claim, part)
    if treatment.empty or baseline.empty:
        return {**not_run("no rows match one of the groups"), "part": part.label,
                "treatment": group_text(treatment, claim.scale), "baseline": group_text(baseline, claim.scale)}
    sign = 1.0 if claim.higher_is_better else -1.0
    paired = pairing.startswith("paired")
    estimate = st.estimate(sign * treatment.to_numpy(), sign * baseline.to_numpy(), paired)
    if claim.test == st.EQUIVALENCE:
        narrow = st.estimate(sign * treatment.to_numpy(), sign * baseline.to_numpy(), paired, st.EQUIVALENCE_LEVEL)
        judgement = st.judge_equivalence(narrow, estimate, claim.margin)
    else:
        judgement = st.judge_difference(estimate, claim.margin)
    groups = {"treatment": group_text(treatment, claim.scale), "baseline": group_text(baseline, claim.scale)}
    return {**record(claim, estimate, judgement, pairing, groups), "part": part.label, "note": part.chosen}


def record(claim: Claim, estimate: st.Estimate, judgement: st.Judgement, pairing: str, groups: dict) -> dict:
    scale = 1.0 if claim.trend else claim.scale
    return {
        **groups, "verdict": judgement.verdict, "pairing": pairing, "part": "",
        "effect": scale * estimate.effect, "low": scale * judgement.low, "high": scale * judgement.high,
        "level": judgement.level, "df": estimate.df, "n_treatment": estimate.n_treatment, "n_baseline": estimate.n_baseline,
        "seeds_needed": judgement.seeds_needed if judgement.seeds_needed is not None else math.nan,
        "seed_effects": json.dumps([round(scale * value, 6) for value in estimate.seed_effects]),
        "note": "",
    }


def judge(claim: Claim, rows: pd.DataFrame) -> list[dict]:
    """One record per comparison of ``claim`` on one experiment's table."""
    if "status" in rows.columns:
        rows = rows[rows["status"] != DIVERGED]
    pool = select(rows, claim.where, claim)
    parts = parts_of(claim, pool)
    if not parts or all(part.treatment.empty for part in parts):
        return [not_run("no rows match the claim's groups")]
    results = [judge_part(claim, part) for part in parts]
    if claim.split and claim.combine == "any":
        holding = [part.label for part, result in zip(parts, results) if result["verdict"] == REPRODUCES]
        note = f"sparsest {holding[-1]} where it holds" if holding else f"holds at no {claim.split}"
        results = [{**result, "note": note} for result in results]
    return results


def not_run(note: str) -> dict:
    return {"part": "", "treatment": "—", "baseline": "—", "effect": math.nan, "low": math.nan, "high": math.nan,
            "level": math.nan, "df": math.nan, "n_treatment": 0, "n_baseline": 0, "seeds_needed": math.nan,
            "seed_effects": "[]", "pairing": "—", "verdict": NOT_RUN, "note": note}


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
            results = judge(claim, rows)
        except KeyError as error:
            results = [not_run(str(error).strip("'\""))]
        verdict = st.combine([result["verdict"] for result in results], "any" if claim.combine == "any" else "all")
        records += [{**result, "experiment": name, "claim_verdict": verdict} for result in results]
    return records


def evaluate(claims: Iterable[Claim], experiments: Mapping[str, str], read_table: TableReader) -> pd.DataFrame:
    """One row per (claim, active experiment testing it, comparison); one "not run" row for a claim no experiment tests.

    ``experiments`` maps each active experiment to its kind.
    """
    records = []
    for claim in claims:
        base = {"key": claim.key, "claim": claim.text, "source": claim.source, "compared": claim.compared(),
                "unit": "ρ" if claim.trend else claim.unit_text, "test": "trend" if claim.trend else claim.test,
                "margin": (0.0 if claim.trend else claim.scale) * claim.margin, "scale_note": claim.scale_note}
        for result in claim_records(claim, experiments, read_table):
            records.append({"claim_verdict": result["verdict"], **base, **result})
    return pd.DataFrame(records, columns=CLAIM_COLUMNS)


CLAIM_COLUMNS = ["key", "claim", "experiment", "part", "verdict", "claim_verdict", "test", "pairing", "n_treatment",
                 "n_baseline", "effect", "low", "high", "level", "df", "unit", "margin", "seeds_needed", "seed_effects",
                 "treatment", "baseline", "compared", "scale_note", "source", "note"]


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
    return "—" if not row["n_treatment"] else f"{row['n_treatment']} / {row['n_baseline']}"


def overview(results: pd.DataFrame) -> pd.DataFrame:
    """The short table the report's front page shows: one row per (claim, experiment), its combined verdict."""
    first = results.drop_duplicates(subset=["key", "experiment"])
    parts = results.groupby(["key", "experiment"], sort=False).size()
    return pd.DataFrame({
        "claim": first["key"] + ": " + first["claim"], "experiment": first["experiment"],
        "effect [interval]": [f"{effect_text(row)} {interval_text(row)}" if parts[(row["key"], row["experiment"])] == 1
                              else f"{parts[(row['key'], row['experiment'])]} comparisons" for row in first.to_dict("records")],
        "verdict": first["claim_verdict"],
    })


def overview_html(results: pd.DataFrame) -> str:
    """``overview`` as an HTML table fragment (the front page includes it raw: no reStructuredText parsing of claim texts)."""
    return html_fragment(markdown_table(overview(results)), OVERVIEW_CLASS)


OVERVIEW_CLASS = "claims-overview"


def at_a_glance(results: pd.DataFrame) -> str:
    """Every (claim, experiment) listed under its verdict: the ones that fail as visible as the ones that hold."""
    first = results.drop_duplicates(subset=["key", "experiment"])
    lines = []
    for verdict in (REPRODUCES, DOES_NOT_REPRODUCE, INCONCLUSIVE, NOT_RUN):
        chosen = first[first["claim_verdict"] == verdict]
        names = ", ".join(f"{key} ({experiment})" for key, experiment in zip(chosen["key"], chosen["experiment"]))
        lines.append(f"* **{verdict}** ({len(chosen)}): {names or 'none'}")
    return "\n".join(lines)


def page_markdown(results: pd.DataFrame, figure_src: str = "") -> str:
    records = results.to_dict("records")
    table = pd.DataFrame({
        "claim": [f"**{row['key']}** {row['claim']}" + (f" — *{row['part']}*" if row["part"] else "") for row in records],
        "source": results["source"], "experiment": results["experiment"], "scale": results["scale_note"],
        "pairing": results["pairing"], "n (treatment / baseline)": [groups_text(row) for row in records],
        "effect": [effect_text(row) for row in records], "interval": [interval_text(row) for row in records],
        "verdict": [f"**{row['verdict']}**" + (f" (claim: {row['claim_verdict']})" if row["part"] else "") for row in records],
        "seeds needed": [seeds_text(row) for row in records],
        "treatment / baseline (mean ± sd over seeds)": [f"{row['treatment']} / {row['baseline']}" for row in records],
        "compared": results["compared"], "note": results["note"],
    })
    figure = f"![Forest plot: per claim, the per-seed effects (dots) and the interval (bar)]({figure_src})\n\n" if figure_src else ""
    return (f"# Claims: what reproduced\n\n{at_a_glance(results)}\n\n{VERDICT_RULE}\n"
            "Effects are in the metric's unit (pp: percentage points; ρ: Spearman's rank correlation).\n\n"
            f"{figure}" + markdown_table(table) + "\n")


def table_reader(experiment_dirs: Mapping[str, Path]) -> TableReader:
    """Read an experiment's table from its results directory (``PIPELINES[kind].tables[role]`` inside it)."""

    def read(experiment: str, kind: str, role: str) -> pd.DataFrame:
        return pd.read_csv(experiment_dirs[experiment] / PIPELINES[kind].tables[role])

    return read


def write_claims(manifest_paths: Iterable[Path], csv: Path, overview_path: Path, markdown_path: Path, page: Path,
                 figure: Path | None = None, claims: Iterable[Claim] | None = None) -> str:
    """Judge the claims (default ``claim_registry.CLAIMS``) on the experiments of these manifests (each beside its
    experiment's tables); the forest plot goes to ``figure`` and into the page. Returns the Markdown."""
    from bench_powerprop.reporting import forest
    from bench_powerprop.reporting.claim_registry import CLAIMS

    manifests = {Path(path).parent: read_json(path) for path in manifest_paths}
    experiments = {manifest["experiment"]: manifest["kind"] for manifest in manifests.values()}
    results = evaluate(CLAIMS if claims is None else claims, experiments,
                       table_reader({manifest["experiment"]: folder for folder, manifest in manifests.items()}))
    text = page_markdown(results, figure.name if figure else "")
    write_table_page(results, text, "Claims: what reproduced", csv, markdown_path, page)
    if figure is not None:
        forest.save(forest.forest_figure(results), figure)
        write_text_atomic(page, html_page(page_markdown(results, forest.data_uri(figure)), "Claims: what reproduced"))
    write_text_atomic(overview_path, overview_html(results))
    return text
