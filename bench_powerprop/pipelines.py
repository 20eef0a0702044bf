"""Pipeline shapes: what an experiment's ``kind`` adds after training its cells.

Each kind is one module of ``bench_powerprop/kinds/`` that declares a ``Pipeline`` (its outputs, what
its table and figure rules read, how Snakemake's report shows each output, the config sections it
needs, its table titles, its writers by dotted name, its tiny example experiment) and its captions in
``workflow/report/``; a module may add a ``Figure`` to an existing kind. The workflow generates the
table and figure rules of every kind from these declarations (``workflow/rules/pipelines.smk``).
Torch-free: the workflow reads them at parse time, and the writers are imported only by report jobs.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

# Subcategories of Snakemake's report: one per kind of figure (a new kind of figure adds one here), and the tables.
ACCURACY_FIGURES = "Accuracy vs. sparsity"
WEIGHT_FIGURES = "Weight distributions"
GRADIENT_FLOW_FIGURES = "Gradient flow"
CONTINUAL_FIGURES = "Continual learning"
ALPHA_FIGURES = "α over training"
TRAINING_FIGURES = "Training curves"
TABLES = "Tables"

#: experiment-level inputs a table or figure rule may read (by name; the rules pass "published" as
#: ``--published`` and "published_curves" as ``--published-curves``, the others are read from their place)
EXPERIMENT_INPUTS = {
    "published": "the published-numbers CSV (config published_results)",
    "published_curves": "published per-run curves (config published_curves)",
    "reference": "the runs table of the experiment's reference experiment",
    "histogram_models": "metrics.json (standing for model.pt) of every trained configuration's lowest seed",
}


@dataclass(frozen=True)
class Shown:
    """How Snakemake's report shows an output."""

    #: the caption file ``workflow/report/<caption>.rst``
    caption: str
    subcategory: str
    label: str


@dataclass(frozen=True)
class Reads:
    """What a table rule (besides the manifest and every cell's metrics.json) or a figure rule (besides
    the manifest and the runs table) reads."""

    #: files in every cell's run directory
    cell_files: tuple[str, ...] = ()
    #: names in ``EXPERIMENT_INPUTS``
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pipeline:
    kind: str
    description: str
    #: config sections an experiment of this kind must have
    requires: tuple[str, ...] = ()
    #: files this kind's rules write into every cell's run directory (besides training's)
    cell_files: tuple[str, ...] = ()
    #: tables written by the kind's aggregation rule: {role: path relative to results/<experiment>/}; the role
    #: "page" (optional) is the HTML page of the Markdown table the kind's writer returns, shown in the report
    tables: dict[str, str] = field(default_factory=dict)
    #: roles of ``tables`` a rule of the kind's own writes (``workflow/rules/<kind>.smk``), not the generated
    #: table rule
    tables_by_own_rule: tuple[str, ...] = ()
    #: figures written by the kind's figure rule: {role: path relative to results/<experiment>/}
    figures: dict[str, str] = field(default_factory=dict)
    #: how the report shows the table page ("page") and every figure (by its role)
    shown: dict[str, Shown] = field(default_factory=dict)
    #: what the table rule and the figure rule read
    tables_read: Reads = Reads()
    figures_read: Reads = Reads()
    #: train settings of which an experiment of this kind must set at least one
    requires_train_any: tuple[str, ...] = ()
    #: the evaluations its tidy rows collect (``bench_powerprop.reporting.rows``: trained, oneshot, task)
    evaluations: tuple[str, ...] = ("trained",)
    #: its table writer, ``"module:function"``: (rows, summary, manifest, published, {role: path}, titles) -> the
    #: Markdown shown in the log (and on the "page")
    tables_writer: str = ""
    #: its figure writer, ``"module:function"``: (rows, manifest, {role: path}) -> None, drawing ``figures`` (those
    #: a ``Figure`` adds are drawn by their own function)
    figures_writer: str = ""
    #: columns its tidy rows add to the shared schema, ``"module:name"`` of a list ("": none)
    extra_columns: str = ""
    #: the titles of its tables, by role, handed to its table writer
    titles: dict[str, str] = field(default_factory=dict)
    #: whether the workflow deploys its experiments that train an MLP (``bench_powerprop/deploy.py``)
    deployable: bool = False
    #: the smallest experiment of this kind that draws every figure and table: {name: declaration}, merged over
    #: ``configs/default.yaml`` (an experiment there of that name supplies what it leaves out); the tiny report run
    #: of the tests is these, one per kind (``tiny_report_config``)
    tiny: dict[str, dict] = field(default_factory=dict)
    #: its own rules besides the generated ones (a per-cell step, tables of ``tables_by_own_rule``): a file of
    #: ``workflow/rules/``, included by the Snakefile (kinds may share one)
    rule_file: str = ""
    #: figures another module adds (``Figure``): (role, "module:function")
    extra_figures: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if not (self.tables_writer and self.figures_writer):
            raise ValueError(f"pipeline {self.kind}: tables_writer and figures_writer name its writers (\"module:function\")")
        shown = {*self.figures, *(("page",) if "page" in self.tables else ())}
        if set(self.shown) != shown:
            raise ValueError(f"pipeline {self.kind}: shown must name exactly {sorted(shown)}, not {sorted(self.shown)}")
        unknown = {*self.tables_read.inputs, *self.figures_read.inputs} - set(EXPERIMENT_INPUTS)
        if unknown:
            raise ValueError(f"pipeline {self.kind}: unknown inputs {sorted(unknown)} (known: {sorted(EXPERIMENT_INPUTS)})")

    @property
    def outputs(self) -> tuple[str, ...]:
        return (*self.tables.values(), *self.figures.values())

    def with_figure(self, extra: Figure) -> Pipeline:
        if extra.role in self.figures:
            raise ValueError(f"pipeline {self.kind}: figure role {extra.role!r} is declared twice")
        return replace(self, figures={**self.figures, extra.role: extra.path}, shown={**self.shown, extra.role: extra.shown},
                       extra_figures=(*self.extra_figures, (extra.role, extra.draw)))


@dataclass(frozen=True)
class Figure:
    """A figure a module adds to an existing kind: drawn by ``draw`` ("module:function": (rows, manifest) -> a
    matplotlib figure, from the kind's runs table) into ``path`` (relative to results/<experiment>/)."""

    kind: str
    role: str
    path: str
    shown: Shown
    draw: str


def rule_files() -> list[str]:
    """The kinds' own rule files (``workflow/rules/<name>``), each once."""
    return sorted({pipeline.rule_file for pipeline in PIPELINES.values()} - {""})


def tiny_report_config() -> dict:
    """The tiny report run of the tests: every kind's ``tiny`` experiment, merged over ``configs/default.yaml``."""
    experiments = {name: experiment for pipeline in PIPELINES.values() for name, experiment in pipeline.tiny.items()}
    return copy.deepcopy({"active_experiments": list(experiments), "experiments": experiments})


def resolve(name: str):
    """The object a ``"module:attribute"`` name declares (a writer, a column list)."""
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def first_seed_cells(cells: list[dict]) -> list[dict]:
    """The lowest-seed cell of every trained configuration (method, variant, sparsity, α): one histogram each."""
    first: dict[tuple, dict] = {}
    for cell in sorted(cells, key=lambda cell: cell["seed"]):
        first.setdefault((cell["method"], cell["variant"], cell["sparsity"], cell["alpha"]), cell)
    return list(first.values())


class _Kinds(Mapping):
    """Every kind, found on first use: each module of ``bench_powerprop/kinds/`` declares ``KIND`` (a ``Pipeline``)
    and/or ``FIGURES`` (``Figure``s it adds to a kind), so a new file is found without editing any list."""

    def __init__(self, package: str):
        self.package = package
        self._kinds: dict[str, Pipeline] | None = None

    def _discover(self) -> dict[str, Pipeline]:
        if self._kinds is None:
            modules = [importlib.import_module(f"{self.package}.{info.name}")
                       for info in pkgutil.iter_modules(importlib.import_module(self.package).__path__)
                       if not info.name.startswith("_")]
            kinds = {}
            for module in (module for module in modules if hasattr(module, "KIND")):
                if module.KIND.kind in kinds:
                    raise ValueError(f"pipeline kind {module.KIND.kind!r} is declared twice")
                kinds[module.KIND.kind] = module.KIND
            for extra in (extra for module in modules for extra in getattr(module, "FIGURES", ())):
                if extra.kind not in kinds:
                    raise ValueError(f"figure {extra.role!r}: unknown kind {extra.kind!r} (known: {sorted(kinds)})")
                kinds[extra.kind] = kinds[extra.kind].with_figure(extra)
            self._kinds = kinds
        return self._kinds

    def __getitem__(self, kind: str) -> Pipeline:
        return self._discover()[kind]

    def __iter__(self):
        return iter(self._discover())

    def __len__(self) -> int:
        return len(self._discover())


#: {kind: its Pipeline}, one module of ``bench_powerprop/kinds/`` each
PIPELINES = _Kinds("bench_powerprop.kinds")


# -- deployment (bench_powerprop/deploy.py, rule deploy) -------------------------------------------
def deployable_experiment(experiment: dict) -> bool:
    """Whether the workflow deploys an experiment: one of a ``deployable`` kind that trains an MLP."""
    return PIPELINES[experiment["kind"]].deployable and experiment["model"]["name"] == "mlp"


DEPLOY_TABLE, DEPLOY_MARKDOWN, DEPLOY_FIGURE = "tables/deploy.csv", "tables/deploy.md", "figures/deploy_accuracy_vs_cost.png"
