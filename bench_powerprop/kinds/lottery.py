"""``lottery``: iterative magnitude pruning with rewinding, the ticket beside its controls at every level."""

from bench_powerprop.pipelines import ACCURACY_FIGURES, TABLES, Pipeline, Shown

KIND = Pipeline(
    "lottery",
    "iterative magnitude pruning with rewinding (one cell per level), the ticket beside its controls at every level",
    tables={"runs": "tables/lottery_runs.csv", "summary": "tables/lottery_summary.csv",
            "markdown": "tables/lottery_summary.md", "page": "tables/lottery_summary.html",
            # written by their own rule from every cell's model.pt (bench_powerprop.reporting.lottery)
            "solutions": "tables/lottery_solutions.csv", "ensembles": "tables/lottery_ensembles.csv"},
    tables_by_own_rule=("solutions", "ensembles"),
    rule_file="lottery.smk",
    figures={"accuracy": "figures/lottery_ticket_vs_controls.png"},
    shown={"page": Shown("lottery_summary", TABLES, "lottery tickets: accuracy by level"),
           "accuracy": Shown("lottery_accuracy", ACCURACY_FIGURES, "lottery tickets vs. controls: accuracy by level")},
    tables_writer="bench_powerprop.reporting.reports:lottery_tables",
    figures_writer="bench_powerprop.reporting.reports:lottery_figures",
    titles={"markdown": "lottery tickets — iterative magnitude pruning with rewinding"},
    tiny={"lottery_digits": {
        "train": {"steps": 20, "log_every": 10, "eval_every": 10, "checkpoint_every": 10},
        "grid": [
            {"method": ["lottery"], "alpha": [1], "sparsity": [0], "seed": [0], "level": [0], "snapshot_steps": [0]},
            {"method": ["lottery"], "alpha": [1], "sparsity": [0], "seed": [0], "level": [1],
             "init_from": {"cell": {"level": 0}, "step": 0}, "mask_from": {"cell": {"level": "previous"}, "step": "final"}},
            {"method": ["lottery_reinit"], "alpha": [1], "sparsity": [0], "seed": [0], "level": [1],
             "mask_from": {"cell": {"method": "lottery"}, "step": "final"}},
        ],
    }},
)
