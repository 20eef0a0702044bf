"""The claims of the source documents that the harness checks, and the one rule that judges them all.

A claim is data: the experiment ``kind`` that tests it, the tidy table of that kind it reads (a
role of ``PIPELINES[kind].tables``), the rows both groups are drawn from (``where``), the rows of
the group the claim favours (``treatment``) and of the group it is compared with (``baseline``),
the column compared (``metric``) and whether larger is better. Selectors are
``{column: wanted}`` where ``wanted`` is a value (equal), a list (any of) or ``{operator: value}``
with an operator of ``OPERATORS`` (several operators are all required). A new claim is one
``Claim`` in ``CLAIMS``; an experiment that makes a claim checkable only has to write the table
its selectors read.

Every claim is judged by ``verdict`` (the rule is spelled out in ``VERDICT_RULE``, which the
claims page prints): nothing here is specific to a claim.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench_powerprop.io import read_json, write_text_atomic
from bench_powerprop.pipelines import PIPELINES
from bench_powerprop.reporting.pages import html_fragment, markdown_table, write_table_page
from bench_powerprop.reporting.rows import DIVERGED

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
OPERATOR_TEXT = {"==": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"}

#: an effect is decided when it is further than this many standard errors from zero
STANDARD_ERRORS = 2.0
#: fewer seeds than this in either group: no standard error, so never decided
MIN_SEEDS = 2

REPRODUCES = "reproduces"
DOES_NOT_REPRODUCE = "does not reproduce"
INCONCLUSIVE = "inconclusive at this seed count"
NOT_RUN = "not run"

VERDICT_RULE = (
    "Each claim compares two groups of rows of one experiment's tidy table (the selectors are in the "
    "\"compared\" column). The seed is the unit of replication: a seed's value is the mean of the metric "
    "over the group's rows of that seed, leaving out runs that diverged. The effect is the mean over the "
    "treatment group's seeds minus the mean over the baseline group's seeds, with the sign chosen so that "
    "a positive effect is the direction the claim states; its standard error is "
    "SE = √(s²ₜ/nₜ + s²ᵦ/nᵦ) (Welch; s the standard deviation over seeds, n the number of seeds). "
    f"Verdict: **{REPRODUCES}** if the effect is larger than {STANDARD_ERRORS:g} SE; "
    f"**{DOES_NOT_REPRODUCE}** if it is below −{STANDARD_ERRORS:g} SE; **{INCONCLUSIVE}** otherwise, and "
    f"always with fewer than {MIN_SEEDS} seeds in either group; **{NOT_RUN}** when no active experiment "
    "is of the claim's kind or none of its rows match."
)


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    #: the document, section, figure or table, and the reference code where there is one
    source: str
    #: the pipeline kind (``PIPELINES``) whose experiments test the claim
    kind: str
    metric: str
    treatment: Mapping[str, Any]
    baseline: Mapping[str, Any]
    where: Mapping[str, Any] = field(default_factory=dict)
    #: the role of the table in ``PIPELINES[kind].tables``
    table: str = "runs"
    higher_is_better: bool = True
    #: the column whose values are independent replicates
    unit: str = "seed"
    #: how the metric is shown: multiplied by ``scale``, followed by ``unit_text``
    scale: float = 100.0
    unit_text: str = "pp"
    metric_text: str = "test accuracy"

    def compared(self) -> str:
        shared = f" (rows with {describe(self.where)})" if self.where else ""
        better = "higher" if self.higher_is_better else "lower"
        return f"{self.metric_text} ({better} is the claim): {describe(self.treatment)} vs {describe(self.baseline)}{shared}"


def describe(selectors: Mapping[str, Any]) -> str:
    """``alpha > 1, method ≠ dense``: the selectors in words, as the page prints them."""
    parts = []
    for column, wanted in selectors.items():
        if isinstance(wanted, Mapping):
            parts += [f"{column} {OPERATOR_TEXT[op]} {value:g}" if isinstance(value, float) else f"{column} {OPERATOR_TEXT[op]} {value}"
                      for op, value in wanted.items()]
        elif isinstance(wanted, list | tuple):
            parts.append(f"{column} ∈ {{{', '.join(map(str, wanted))}}}")
        else:
            parts.append(f"{column} = {wanted}")
    return ", ".join(parts)


def matching(values: pd.Series, wanted: Any) -> pd.Series:
    if isinstance(wanted, Mapping):
        unknown = set(wanted) - set(OPERATORS)
        if unknown:
            raise ValueError(f"unknown selector operator(s) {sorted(unknown)} (known: {', '.join(OPERATORS)})")
        keep = pd.Series(True, index=values.index)
        for op, value in wanted.items():
            keep &= OPERATORS[op](values, value)
        return keep
    if isinstance(wanted, list | tuple):
        return values.isin(wanted)
    return values == wanted


def select(rows: pd.DataFrame, selectors: Mapping[str, Any], claim: Claim) -> pd.DataFrame:
    missing = [column for column in selectors if column not in rows.columns]
    if missing:
        raise KeyError(f"claim {claim.key!r}: the {claim.kind} table {claim.table!r} has no column(s) {missing}")
    keep = pd.Series(True, index=rows.index)
    for column, wanted in selectors.items():
        keep &= matching(rows[column], wanted)
    return rows[keep]


@dataclass(frozen=True)
class Group:
    mean: float
    sd: float
    n: int

    @classmethod
    def of(cls, rows: pd.DataFrame, metric: str, unit: str) -> Group:
        """Mean and standard deviation over replicates of each replicate's mean over its rows."""
        per_unit = rows.groupby(unit)[metric].mean().dropna()
        return cls(float(per_unit.mean()) if len(per_unit) else math.nan,
                   float(per_unit.std(ddof=1)) if len(per_unit) > 1 else math.nan, len(per_unit))

    def text(self, scale: float) -> str:
        if self.n == 0:
            return "—"
        spread = "" if math.isnan(self.sd) else f" ± {scale * self.sd:.2f}"
        return f"{scale * self.mean:.2f}{spread} (n={self.n})"


def verdict(effect: float, se: float, n_treatment: int, n_baseline: int) -> str:
    """The one rule (``VERDICT_RULE``); ``effect`` is signed so that positive is the claimed direction."""
    if min(n_treatment, n_baseline) < MIN_SEEDS or math.isnan(effect) or math.isnan(se):
        return INCONCLUSIVE
    if effect > STANDARD_ERRORS * se:
        return REPRODUCES
    if effect < -STANDARD_ERRORS * se:
        return DOES_NOT_REPRODUCE
    return INCONCLUSIVE


def judge(claim: Claim, rows: pd.DataFrame) -> dict:
    """The measured effect and verdict of ``claim`` on one experiment's table."""
    if "status" in rows.columns:
        rows = rows[rows["status"] != DIVERGED]
    pool = select(rows, claim.where, claim)
    treatment = Group.of(select(pool, claim.treatment, claim), claim.metric, claim.unit)
    baseline = Group.of(select(pool, claim.baseline, claim), claim.metric, claim.unit)
    if min(treatment.n, baseline.n) == 0:
        return {**not_run("no rows match one of the groups"), "treatment": treatment.text(claim.scale),
                "baseline": baseline.text(claim.scale)}
    sign = 1.0 if claim.higher_is_better else -1.0
    effect = sign * (treatment.mean - baseline.mean)
    se = math.sqrt(treatment.sd ** 2 / treatment.n + baseline.sd ** 2 / baseline.n) if min(treatment.n, baseline.n) > 1 else math.nan
    return {
        "treatment": treatment.text(claim.scale), "baseline": baseline.text(claim.scale),
        "effect": claim.scale * effect, "se": claim.scale * se, "n_treatment": treatment.n, "n_baseline": baseline.n,
        "verdict": verdict(effect, se, treatment.n, baseline.n), "note": "",
    }


def not_run(note: str) -> dict:
    return {"treatment": "—", "baseline": "—", "effect": math.nan, "se": math.nan, "n_treatment": 0, "n_baseline": 0,
            "verdict": NOT_RUN, "note": note}


#: ``(experiment, kind, table role) -> rows``: how ``evaluate`` reads an experiment's table
TableReader = Callable[[str, str, str], pd.DataFrame]


def evaluate(claims: Iterable[Claim], experiments: Mapping[str, str], read_table: TableReader) -> pd.DataFrame:
    """One row per (claim, active experiment of its kind); one "not run" row for a claim no experiment tests.

    ``experiments`` maps each active experiment to its kind.
    """
    records = []
    for claim in claims:
        testing = [name for name, kind in experiments.items() if kind == claim.kind]
        base = {"claim": claim.text, "source": claim.source, "compared": claim.compared(), "unit": claim.unit_text}
        if not testing:
            records.append({**base, "key": claim.key, "experiment": "—",
                            **not_run(f"no active experiment of kind {claim.kind!r}")})
        for name in testing:
            records.append({**base, "key": claim.key, "experiment": name, **judge(claim, read_table(name, claim.kind, claim.table))})
    return pd.DataFrame(records, columns=CLAIM_COLUMNS)


CLAIM_COLUMNS = ["key", "claim", "experiment", "verdict", "effect", "se", "unit", "n_treatment", "n_baseline",
                 "treatment", "baseline", "compared", "source", "note"]


def effect_text(row: Mapping) -> str:
    if math.isnan(row["effect"]):
        return "—"
    se = "" if math.isnan(row["se"]) else f" ± {row['se']:.2f}"
    return f"{row['effect']:+.2f}{se} {row['unit']}".rstrip()


def overview(results: pd.DataFrame) -> pd.DataFrame:
    """The short table the report's front page shows."""
    return pd.DataFrame({
        "claim": results["claim"], "experiment": results["experiment"],
        "effect ± SE": [effect_text(row) for row in results.to_dict("records")], "verdict": results["verdict"],
    })


def overview_html(results: pd.DataFrame) -> str:
    """``overview`` as an HTML table fragment (the front page includes it raw: no reStructuredText parsing of claim texts)."""
    return html_fragment(markdown_table(overview(results)), OVERVIEW_CLASS)


OVERVIEW_CLASS = "claims-overview"


def page_markdown(results: pd.DataFrame) -> str:
    table = pd.DataFrame({
        "claim": results["claim"], "experiment": results["experiment"],
        "verdict": [f"**{verdict}**" + (f" ({note})" if note else "") for verdict, note in zip(results["verdict"], results["note"])],
        "effect ± SE": [effect_text(row) for row in results.to_dict("records")],
        "treatment (mean ± sd over seeds)": results["treatment"], "baseline (mean ± sd over seeds)": results["baseline"],
        "compared": results["compared"], "source": results["source"],
    })
    return (f"# Claims: what reproduced\n\n{VERDICT_RULE}\n\n"
            "Effects are in the metric's unit (pp: percentage points).\n\n" + markdown_table(table) + "\n")


def table_reader(experiment_dirs: Mapping[str, Path]) -> TableReader:
    """Read an experiment's table from its results directory (``PIPELINES[kind].tables[role]`` inside it)."""

    def read(experiment: str, kind: str, role: str) -> pd.DataFrame:
        return pd.read_csv(experiment_dirs[experiment] / PIPELINES[kind].tables[role])

    return read


def write_claims(manifest_paths: Iterable[Path], csv: Path, overview_path: Path, markdown_path: Path, page: Path) -> str:
    """Judge ``CLAIMS`` on the experiments of these manifests (each beside its experiment's tables); returns the Markdown."""
    manifests = {Path(path).parent: read_json(path) for path in manifest_paths}
    experiments = {manifest["experiment"]: manifest["kind"] for manifest in manifests.values()}
    results = evaluate(CLAIMS, experiments, table_reader({manifest["experiment"]: folder for folder, manifest in manifests.items()}))
    text = page_markdown(results)
    write_table_page(results, text, "Claims: what reproduced", csv, markdown_path, page)
    write_text_atomic(overview_path, overview_html(results))
    return text


# -- the claims --------------------------------------------------------------------------------------
POWERPROP = "Schwarz, Jayakumar, Pascanu, Latham, Teh: Powerpropagation, NeurIPS 2021 (arXiv:2110.00296)"
STUDENT_REPORT = "the student reproduction report of Powerpropagation (a source document of this harness)"
POWERPROP_ALPHA = {"alpha": {">": 1}}
NO_POWERPROP = {"alpha": 1}

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "powerprop_oneshot",
        "Powerprop (α > 1) keeps more test accuracy than α = 1 under one-shot magnitude pruning with ≤ 5% of the weights left",
        f"{POWERPROP}, MNIST one-shot pruning figure (LeNet-300-100, α ∈ {{1, …, 5}}); protocol and plot: "
        "github.com/google-deepmind/deepmind-research powerpropagation/powerpropagation.ipynb @ 243aff2, cells 'Pruning' and 'Plot'",
        kind="oneshot", metric="test_accuracy", treatment=POWERPROP_ALPHA, baseline=NO_POWERPROP,
        where={"evaluation": "oneshot", "target_sparsity": {">=": 0.95}},
    ),
    Claim(
        "powerprop_sparse_training",
        "Powerprop (α > 1) improves the test accuracy of sparse training at 90% sparsity and above",
        f"{POWERPROP}, ImageNet ResNet-50 sparse-training tables (GMP, RigL, Top-KAST with and without Powerprop at "
        "80/90/95% sparsity; table numbers not checked here, see configs/published_results.csv)",
        kind="sparse_training", metric="test_accuracy", treatment=POWERPROP_ALPHA, baseline=NO_POWERPROP,
        where={"method": {"!=": "dense"}, "sparsity": {">=": 0.9}},
    ),
    Claim(
        "lottery_ticket_vs_reinit",
        "Lottery tickets (the iterative-magnitude-pruning mask with the original initialisation) beat random "
        "re-initialisation at the same mask",
        "Frankle & Carbin: The Lottery Ticket Hypothesis, ICLR 2019 (arXiv:1803.03635), Sec. 2, LeNet-300-100 on MNIST, "
        "winning tickets vs. the same masks randomly reinitialised",
        kind="lottery", metric="test_accuracy", treatment={"method": "lottery", "variant": "default"},
        baseline={"method": "lottery_reinit"}, where={"alpha": 1, "level": {">=": 1}},
    ),
    Claim(
        "sparse_init_gradient_flow",
        "Sparse-aware initialisation improves the gradient flow of static sparse training",
        "Evci, Ioannou, Keskin, Dauphin: Gradient Flow in Sparse Neural Networks and How Lottery Tickets Win, AAAI 2022 "
        "(arXiv:2010.03533); official code github.com/google-research/rigl rigl/rigl_tf2/init_utils.py::unit_scaled_init",
        kind="gradflow", table="norms", metric="grad_norm", treatment={"variant": "sparse_init"},
        baseline={"variant": "default"}, where={"method": "static", "alpha": 1, "step": {"<=": 100}}, scale=1.0, unit_text="",
        metric_text="gradient norm over the first 100 steps",
    ),
    Claim(
        "epn_powerprop_tasks",
        "EfficientPackNet with Powerprop fits more tasks into one network than with α = 1: higher test accuracy over "
        "all tasks, each with its own mask, once the whole sequence is learnt",
        f"{STUDENT_REPORT}, EfficientPackNet (its Algorithm 1) on permuted tasks",
        kind="continual", metric="test_accuracy", treatment={"method": "efficient_packnet", **POWERPROP_ALPHA},
        baseline={"method": "efficient_packnet", **NO_POWERPROP}, where={"final": True},
    ),
    Claim(
        "adaptive_alpha_sparser",
        "Adaptive α (the report's controller, from α = 1.5) gives sparser weights than the same α kept fixed: "
        "a larger fraction of effective weights with |θ| < ε at the end of training",
        f"{STUDENT_REPORT}, section 'Adaptive Tuning of α'",
        kind="adaptive_alpha", table="trace", metric="fraction_below_epsilon",
        treatment={"variant": "default", "alpha": 1.5}, baseline={"variant": "fixed", "alpha": 1.5},
        where={"final": True}, metric_text="fraction of |θ| < ε",
    ),
)
