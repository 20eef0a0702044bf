"""``oneshot``: train every cell, then prune each trained model once at every keep level (no retraining)."""

from bench_powerprop.pipelines import ACCURACY_FIGURES, TABLES, WEIGHT_FIGURES, Pipeline, Reads, Shown

#: the one-shot pruning step (rule prune_eval: every trained cell pruned at every keep level), of every kind that has it
PRUNE_EVERY_CELL = {"requires": ("prune",), "cell_files": ("oneshot_prune.csv",), "rule_file": "oneshot.smk",
                    "tables_read": Reads(cell_files=("oneshot_prune.csv",)), "evaluations": ("oneshot",)}

KIND = Pipeline(
    "oneshot",
    "train every cell, then prune each trained model once at every keep level (no retraining)",
    **PRUNE_EVERY_CELL,
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
    figures_read=Reads(inputs=("histogram_models",)),
    tables_writer="bench_powerprop.reporting.reports:oneshot_tables",
    figures_writer="bench_powerprop.reporting.reports:oneshot_figures",
    titles={"markdown": "one-shot pruning after training"},
    deployable=True,
    # two seeds: the claims it tests get a decided verdict where the effect is clear
    tiny={"oneshot_digits": {
        "train": {"steps": 40, "log_every": 10, "eval_every": 20, "checkpoint_every": 20},
        "grid": [{"method": ["dense"], "alpha": [1, 2], "sparsity": [0], "seed": [0, 1]}],
        "prune": {"keep_levels": [0.03, 0.2, 1.0]},
    }},
)
