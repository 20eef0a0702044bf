"""``gradflow``: the gradient norm on a fixed held-out batch during training, one curve per method."""

from bench_powerprop.pipelines import GRADIENT_FLOW_FIGURES, TABLES, Pipeline, Shown

KIND = Pipeline(
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
    tables_writer="bench_powerprop.reporting.reports:gradflow_tables",
    figures_writer="bench_powerprop.reporting.reports:gradflow_figures",
    titles={"markdown": "gradient flow during training"},
    tiny={"gradflow_digits": {
        "train": {"steps": 20, "log_every": 10, "eval_every": 10, "checkpoint_every": 10, "gradient_norm_every": 10},
        "grid": [{"method": ["static"], "variant": ["default", "sparse_init"], "alpha": [1], "sparsity": [0.95],
                  "seed": [0]}],
    }},
)
