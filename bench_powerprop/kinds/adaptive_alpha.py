"""``adaptive_alpha``: one-shot pruning of adaptive- and fixed-α cells, and α traced over training."""

from bench_powerprop.kinds.oneshot import PRUNE_EVERY_CELL
from bench_powerprop.pipelines import ACCURACY_FIGURES, ALPHA_FIGURES, TABLES, WEIGHT_FIGURES, Pipeline, Reads, Shown

KIND = Pipeline(
    "adaptive_alpha",
    "train every cell (method adaptive_alpha: adaptive or fixed α), prune each trained model once at every keep "
    "level, and trace α and the fraction of |θ| < ε over training",
    **PRUNE_EVERY_CELL,
    tables={"runs": "tables/adaptive_oneshot_runs.csv", "summary": "tables/adaptive_oneshot_summary.csv",
            "markdown": "tables/adaptive_alpha_summary.md", "trace": "tables/alpha_trace.csv",
            "page": "tables/adaptive_alpha_summary.html"},
    figures={"accuracy": "figures/adaptive_accuracy_vs_weights_remaining.png",
             "histograms": "figures/adaptive_weight_histograms.png", "trace": "figures/alpha_trace.png"},
    shown={"page": Shown("adaptive_alpha_summary", TABLES, "adaptive α: one-shot pruning and final α"),
           "accuracy": Shown("adaptive_accuracy", ACCURACY_FIGURES, "adaptive vs. fixed α: one-shot pruning accuracy"),
           "histograms": Shown("adaptive_weight_histograms", WEIGHT_FIGURES, "effective-weight magnitudes after training"),
           "trace": Shown("alpha_trace", ALPHA_FIGURES, "α and the fraction of |θ| < ε over training")},
    figures_read=Reads(cell_files=("metrics.json",), inputs=("histogram_models",)),
    tables_writer="bench_powerprop.reporting.reports:adaptive_tables",
    figures_writer="bench_powerprop.reporting.reports:adaptive_figures",
    titles={"markdown": "one-shot pruning after training"},
    tiny={"adaptive_alpha_digits": {
        "train": {"steps": 40, "log_every": 10, "eval_every": 20, "checkpoint_every": 20},
        "methods": {"adaptive_alpha": {"every_epochs": 1, "steps_per_epoch": 10}},
        "grid": [{"method": ["adaptive_alpha"], "variant": ["default", "fixed"], "alpha": [1.5], "sparsity": [0],
                  "seed": [0]}],
        "prune": {"keep_levels": [0.05, 0.2, 1.0]},
    }},
)
