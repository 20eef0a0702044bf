"""``sparse_training``: train every cell with its sparse method, beside the published numbers."""

from bench_powerprop.pipelines import ACCURACY_FIGURES, TABLES, Pipeline, Reads, Shown

KIND = Pipeline(
    "sparse_training",
    "train every cell with its sparse method (the sparsity is reached during training)",
    tables={"runs": "tables/sparse_runs.csv", "summary": "tables/sparse_summary.csv",
            "paper_csv": "tables/sparse_paper_table.csv", "markdown": "tables/sparse_paper_table.md",
            "page": "tables/sparse_paper_table.html"},
    figures={"accuracy": "figures/sparse_accuracy_vs_sparsity.png"},
    shown={"page": Shown("sparse_paper_table", TABLES, "sparse training beside published numbers"),
           "accuracy": Shown("sparse_accuracy", ACCURACY_FIGURES, "sparse training: accuracy vs. sparsity")},
    tables_read=Reads(inputs=("published",)),
    tables_writer="bench_powerprop.reporting.reports:sparse_tables",
    figures_writer="bench_powerprop.reporting.reports:sparse_figures",
    titles={"markdown": "sparse training, ours vs published"},
    deployable=True,
    # two seeds: the claims it tests get a decided verdict where the effect is clear
    tiny={"sparse_digits": {
        "train": {"steps": 30, "log_every": 10, "eval_every": 10, "checkpoint_every": 10},
        "grid": [{"method": ["gmp"], "alpha": [1, 2], "sparsity": [0.9], "seed": [0, 1]}],
    }},
)
