"""``pai``: prune at initialisation (one cell per scorer, init and sparsity), then train the fixed mask."""

from bench_powerprop.pipelines import ACCURACY_FIGURES, TABLES, Pipeline, Reads, Shown

KIND = Pipeline(
    "pai",
    "prune at initialisation (one cell per scorer, init and sparsity), then train the fixed mask",
    tables={"runs": "tables/pai_runs.csv", "summary": "tables/pai_summary.csv", "markdown": "tables/pai_summary.md",
            "page": "tables/pai_summary.html"},
    figures={"accuracy": "figures/pai_accuracy_vs_weights_remaining.png"},
    shown={"page": Shown("pai_summary", TABLES, "pruning at init: accuracy by scorer and sparsity"),
           "accuracy": Shown("pai_accuracy", ACCURACY_FIGURES, "pruning at init: accuracy vs. weights remaining")},
    tables_read=Reads(inputs=("published", "reference")),
    figures_read=Reads(inputs=("reference", "published_curves")),
    tables_writer="bench_powerprop.reporting.reports:pai_tables",
    figures_writer="bench_powerprop.reporting.reports:pai_figures",
    titles={"markdown": "pruning at initialisation, then training the fixed mask"},
    tiny={"pai_digits": {
        # sparse_digits' budget (checked: its rows are drawn beside these as the reference)
        "train": {"steps": 30, "log_every": 10, "eval_every": 10, "checkpoint_every": 10},
        "reference": {"experiment": "sparse_digits", "methods": ["gmp"]},
        "grid": [{"method": ["pai"], "variant": ["snip"], "alpha": [2], "sparsity": [0.9], "seed": [0]}],
    }},
)
