"""Pipeline shapes: what an experiment's ``kind`` adds after training its cells.

Each shape is one entry here (its outputs, what its table and figure rules read, how Snakemake's
report shows each output, the config sections it needs), one report spec in
``bench_powerprop/reporting/reports.py`` and its captions in ``workflow/report/``. The workflow
generates the table and figure rules of every shape from this declaration
(``workflow/rules/pipelines.smk``). Torch-free: the workflow reads it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def __post_init__(self):
        shown = {*self.figures, *(("page",) if "page" in self.tables else ())}
        if set(self.shown) != shown:
            raise ValueError(f"pipeline {self.kind}: shown must name exactly {sorted(shown)}, not {sorted(self.shown)}")
        unknown = {*self.tables_read.inputs, *self.figures_read.inputs} - set(EXPERIMENT_INPUTS)
        if unknown:
            raise ValueError(f"pipeline {self.kind}: unknown inputs {sorted(unknown)} (known: {sorted(EXPERIMENT_INPUTS)})")

    @property
    def outputs(self) -> tuple[str, ...]:
        return (*self.tables.values(), *self.figures.values())


def first_seed_cells(cells: list[dict]) -> list[dict]:
    """The lowest-seed cell of every trained configuration (method, variant, sparsity, α): one histogram each."""
    first: dict[tuple, dict] = {}
    for cell in sorted(cells, key=lambda cell: cell["seed"]):
        first.setdefault((cell["method"], cell["variant"], cell["sparsity"], cell["alpha"]), cell)
    return list(first.values())


PIPELINES = {
    pipeline.kind: pipeline
    for pipeline in (
        Pipeline(
            "oneshot",
            "train every cell, then prune each trained model once at every keep level (no retraining)",
            requires=("prune",),
            cell_files=("oneshot_prune.csv",),
            tables={"runs": "tables/oneshot_runs.csv", "summary": "tables/oneshot_summary.csv",
                    "markdown": "tables/oneshot_summary.md", "page": "tables/oneshot_summary.html",
                    # the sweep's structured rows (prune.structures; empty without): their own claims read them
                    "structured": "tables/oneshot_structured.csv"},
            figures={"accuracy": "figures/oneshot_accuracy_vs_weights_remaining.png",
                     "histograms": "figures/weight_histograms.png", "layer_histograms": "figures/weight_histograms_per_layer.png"},
            shown={"page": Shown("oneshot_summary", TABLES, "one-shot pruning: accuracy by weights kept"),
                   "accuracy": Shown("oneshot_accuracy", ACCURACY_FIGURES, "one-shot pruning: accuracy vs. weights remaining"),
                   "histograms": Shown("weight_histograms", WEIGHT_FIGURES, "effective-weight magnitudes after training"),
                   "layer_histograms": Shown("weight_histograms_per_layer", WEIGHT_FIGURES,
                                             "effective-weight magnitudes after training, per layer")},
            tables_read=Reads(cell_files=("oneshot_prune.csv",)),
            figures_read=Reads(inputs=("histogram_models",)),
        ),
        Pipeline(
            "sparse_training",
            "train every cell with its sparse method (the sparsity is reached during training)",
            tables={"runs": "tables/sparse_runs.csv", "summary": "tables/sparse_summary.csv",
                    "paper_csv": "tables/sparse_paper_table.csv", "markdown": "tables/sparse_paper_table.md",
                    "page": "tables/sparse_paper_table.html"},
            figures={"accuracy": "figures/sparse_accuracy_vs_sparsity.png"},
            shown={"page": Shown("sparse_paper_table", TABLES, "sparse training beside published numbers"),
                   "accuracy": Shown("sparse_accuracy", ACCURACY_FIGURES, "sparse training: accuracy vs. sparsity")},
            tables_read=Reads(inputs=("published",)),
        ),
        Pipeline(
            "continual",
            "train every cell on a task sequence, one phase per task (method: packnet, efficient_packnet); after each task, "
            "evaluate every task seen with its own mask",
            tables={"runs": "tables/continual_runs.csv", "summary": "tables/continual_summary.csv",
                    "matrix": "tables/continual_accuracy_matrix.csv", "markdown": "tables/continual_summary.md",
                    "page": "tables/continual_summary.html"},
            figures={"average": "figures/continual_average_accuracy.png", "capacity": "figures/continual_capacity.png",
                     "matrix": "figures/continual_accuracy_matrix.png"},
            shown={"page": Shown("continual_summary", TABLES, "continual learning: accuracy and capacity"),
                   "average": Shown("continual_average_accuracy", CONTINUAL_FIGURES, "average accuracy over the tasks seen"),
                   "capacity": Shown("continual_capacity", CONTINUAL_FIGURES, "capacity used per task"),
                   "matrix": Shown("continual_accuracy_matrix", CONTINUAL_FIGURES, "task-by-task accuracy matrix")},
        ),
        Pipeline(
            "adaptive_alpha",
            "train every cell (method adaptive_alpha: adaptive or fixed α), prune each trained model once at every keep "
            "level, and trace α and the fraction of |θ| < ε over training",
            requires=("prune",),
            cell_files=("oneshot_prune.csv",),
            tables={"runs": "tables/adaptive_oneshot_runs.csv", "summary": "tables/adaptive_oneshot_summary.csv",
                    "markdown": "tables/adaptive_alpha_summary.md", "trace": "tables/alpha_trace.csv",
                    "page": "tables/adaptive_alpha_summary.html"},
            figures={"accuracy": "figures/adaptive_accuracy_vs_weights_remaining.png",
                     "histograms": "figures/adaptive_weight_histograms.png", "trace": "figures/alpha_trace.png"},
            shown={"page": Shown("adaptive_alpha_summary", TABLES, "adaptive α: one-shot pruning and final α"),
                   "accuracy": Shown("adaptive_accuracy", ACCURACY_FIGURES, "adaptive vs. fixed α: one-shot pruning accuracy"),
                   "histograms": Shown("adaptive_weight_histograms", WEIGHT_FIGURES,
                                       "effective-weight magnitudes after training"),
                   "trace": Shown("alpha_trace", ALPHA_FIGURES, "α and the fraction of |θ| < ε over training")},
            tables_read=Reads(cell_files=("oneshot_prune.csv",)),
            figures_read=Reads(cell_files=("metrics.json",), inputs=("histogram_models",)),
        ),
        Pipeline(
            "pai",
            "prune at initialisation (one cell per scorer, init and sparsity), then train the fixed mask",
            tables={"runs": "tables/pai_runs.csv", "summary": "tables/pai_summary.csv", "markdown": "tables/pai_summary.md",
                    "page": "tables/pai_summary.html"},
            figures={"accuracy": "figures/pai_accuracy_vs_weights_remaining.png"},
            shown={"page": Shown("pai_summary", TABLES, "pruning at init: accuracy by scorer and sparsity"),
                   "accuracy": Shown("pai_accuracy", ACCURACY_FIGURES, "pruning at init: accuracy vs. weights remaining")},
            tables_read=Reads(inputs=("published", "reference")),
            figures_read=Reads(inputs=("reference", "published_curves")),
        ),
        Pipeline(
            "lottery",
            "iterative magnitude pruning with rewinding (one cell per level), the ticket beside its controls at every level",
            tables={"runs": "tables/lottery_runs.csv", "summary": "tables/lottery_summary.csv",
                    "markdown": "tables/lottery_summary.md", "page": "tables/lottery_summary.html",
                    # written by their own rule from every cell's model.pt (bench_powerprop.reporting.lottery)
                    "solutions": "tables/lottery_solutions.csv", "ensembles": "tables/lottery_ensembles.csv"},
            tables_by_own_rule=("solutions", "ensembles"),
            figures={"accuracy": "figures/lottery_ticket_vs_controls.png"},
            shown={"page": Shown("lottery_summary", TABLES, "lottery tickets: accuracy by level"),
                   "accuracy": Shown("lottery_accuracy", ACCURACY_FIGURES, "lottery tickets vs. controls: accuracy by level")},
        ),
        Pipeline(
            "gradflow",
            "the gradient norm on a fixed held-out batch during training, one curve per method",
            tables={"runs": "tables/gradflow_runs.csv", "summary": "tables/gradflow_summary.csv",
                    "norms": "tables/gradflow_norms.csv", "markdown": "tables/gradflow_summary.md",
                    "page": "tables/gradflow_summary.html"},
            figures={"gradient_norm": "figures/gradflow_gradient_norm_vs_step.png"},
            shown={"page": Shown("gradflow_summary", TABLES, "gradient flow: accuracy and gradient norms"),
                   "gradient_norm": Shown("gradflow_norms", GRADIENT_FLOW_FIGURES, "gradient norm vs. training step")},
            # gradient_norms.csv: written by training before the cell's metrics.json, which stands for it
            requires_train_any=("gradient_norm_every", "gradient_norm_steps"),
        ),
    )
}


# -- deployment (bench_powerprop/deploy.py, rule deploy) -------------------------------------------
def deployable_experiment(experiment: dict) -> bool:
    """Whether the workflow deploys an experiment: one-shot or sparse training of an MLP."""
    return experiment["kind"] in ("oneshot", "sparse_training") and experiment["model"]["name"] == "mlp"


DEPLOY_TABLE, DEPLOY_MARKDOWN, DEPLOY_FIGURE = "tables/deploy.csv", "tables/deploy.md", "figures/deploy_accuracy_vs_cost.png"
