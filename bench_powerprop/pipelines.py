"""Pipeline shapes: what an experiment's ``kind`` adds after training its cells.

Each shape is one entry here (its outputs, the per-cell files its rules write, the config
sections it needs) plus one rule file ``workflow/rules/<kind>.smk`` and one report spec in
``bench_powerprop/reporting/reports.py``. Torch-free: the workflow reads it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    #: figures written by the kind's figure rule: {role: path relative to results/<experiment>/}
    figures: dict[str, str] = field(default_factory=dict)
    #: train settings of which an experiment of this kind must set at least one
    requires_train_any: tuple[str, ...] = ()

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
                    "markdown": "tables/oneshot_summary.md", "page": "tables/oneshot_summary.html"},
            figures={"accuracy": "figures/oneshot_accuracy_vs_weights_remaining.png",
                     "histograms": "figures/weight_histograms.png", "layer_histograms": "figures/weight_histograms_per_layer.png"},
        ),
        Pipeline(
            "sparse_training",
            "train every cell with its sparse method (the sparsity is reached during training)",
            tables={"runs": "tables/sparse_runs.csv", "summary": "tables/sparse_summary.csv",
                    "paper_csv": "tables/sparse_paper_table.csv", "markdown": "tables/sparse_paper_table.md",
                    "page": "tables/sparse_paper_table.html"},
            figures={"accuracy": "figures/sparse_accuracy_vs_sparsity.png"},
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
        ),
        Pipeline(
            "pai",
            "prune at initialisation (one cell per scorer, init and sparsity), then train the fixed mask",
            tables={"runs": "tables/pai_runs.csv", "summary": "tables/pai_summary.csv", "markdown": "tables/pai_summary.md",
                    "page": "tables/pai_summary.html"},
            figures={"accuracy": "figures/pai_accuracy_vs_weights_remaining.png"},
        ),
        Pipeline(
            "lottery",
            "iterative magnitude pruning with rewinding (one cell per level), the ticket beside its controls at every level",
            tables={"runs": "tables/lottery_runs.csv", "summary": "tables/lottery_summary.csv",
                    "markdown": "tables/lottery_summary.md", "page": "tables/lottery_summary.html",
                    # written by their own rule from every cell's model.pt (bench_powerprop.reporting.lottery)
                    "solutions": "tables/lottery_solutions.csv", "ensembles": "tables/lottery_ensembles.csv"},
            figures={"accuracy": "figures/lottery_ticket_vs_controls.png"},
        ),
        Pipeline(
            "gradflow",
            "the gradient norm on a fixed held-out batch during training, one curve per method",
            tables={"runs": "tables/gradflow_runs.csv", "summary": "tables/gradflow_summary.csv",
                    "norms": "tables/gradflow_norms.csv", "markdown": "tables/gradflow_summary.md",
                    "page": "tables/gradflow_summary.html"},
            figures={"gradient_norm": "figures/gradflow_gradient_norm_vs_step.png"},
            requires_train_any=("gradient_norm_every", "gradient_norm_steps"),
        ),
    )
}
