"""A claim as data: what a source says, which rows of which table test it, and how (the vocabulary of selectors).

``claims`` judges claims; ``claim_registry`` declares them. Both import this module, neither the other's.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench_powerprop.reporting import statistics as st

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
OPERATOR_TEXT = {"==": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"}
BEST = "best"

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

    def smallest_effect_text(self) -> str:
        """The effect the interval must clear to reproduce, in the page's units."""
        unit = f" {self.unit_text}" if self.unit_text and not self.trend else ""
        if self.test == st.EQUIVALENCE and not self.trend:
            return f"within ±{self.scale * self.margin:.3g}{unit}"
        if self.margin:
            return f"> −{self.scale * self.margin:.3g}{unit} (non-inferiority)"
        if self.min_effect is None:
            return "undeclared (0)"
        return f"ρ > {self.min_effect:.3g}" if self.trend else f"> {self.scale * self.min_effect:.3g}{unit}"

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
