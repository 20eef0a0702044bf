"""``continual``: one phase per task of a task sequence, every task seen evaluated with its own mask."""

from bench_powerprop.pipelines import CONTINUAL_FIGURES, TABLES, Pipeline, Shown

KIND = Pipeline(
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
    evaluations=("task",),
    tables_writer="bench_powerprop.reporting.reports:continual_tables",
    figures_writer="bench_powerprop.reporting.reports:continual_figures",
    extra_columns="bench_powerprop.reporting.rows:CONTINUAL_COLUMNS",
    titles={"markdown": "continual learning, one mask per task"},
    tiny={"continual_digits": {
        "data": {"name": "permuted", "base": {"name": "digits"}, "tasks": 3},
        "train": {"steps": 20, "log_every": 10, "eval_every": 20, "checkpoint_every": 20},
        "grid": [{"method": ["efficient_packnet"], "alpha": [1, 2], "sparsity": [0], "seed": [0]}],
    }},
)
