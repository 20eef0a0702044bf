# Lottery tickets (kind: lottery): every level of every chain, and every control, is a cell trained by the
# `train` rule; a level's lineage (mask_from the previous level, init_from level 0 at the rewind step) makes
# the previous level's files its inputs, so the DAG is the chain and a finished level is never recomputed.
# Then the tidy table, a summary by level, and the ticket-vs-controls figure; and, from every cell's model, each
# level's distance to its pruning solution and the seed-pair ensemble gains (bench_powerprop.reporting.lottery).


localrules:
    aggregate_lottery,
    figures_lottery,
    solutions_lottery,


rule aggregate_lottery:
    input:
        manifest=experiment_file("manifest.json"),
        metrics=cell_files_of("metrics.json"),
    output:
        runs=experiment_file("tables/lottery_runs.csv"),
        summary=experiment_file("tables/lottery_summary.csv"),
        markdown=experiment_file("tables/lottery_summary.md"),
        page=report(
            experiment_file("tables/lottery_summary.html"),
            caption="../report/lottery_summary.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=TABLES,
            labels={"table": "lottery tickets: accuracy by level"},
        ),
    log:
        experiment_log("aggregate_lottery"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report tables --manifest {input.manifest}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule figures_lottery:
    input:
        manifest=experiment_file("manifest.json"),
        runs=experiment_file("tables/lottery_runs.csv"),
    output:
        report(
            experiment_file("figures/lottery_ticket_vs_controls.png"),
            caption="../report/lottery_accuracy.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=ACCURACY_FIGURES,
            labels={"figure": "lottery tickets vs. controls: accuracy by level"},
        ),
    log:
        experiment_log("figures_lottery"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report figures --manifest {input.manifest}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule solutions_lottery:
    input:
        manifest=experiment_file("manifest.json"),
        models=cell_files_of("model.pt"),
    output:
        solutions=experiment_file("tables/lottery_solutions.csv"),
        ensembles=experiment_file("tables/lottery_ensembles.csv"),
    log:
        experiment_log("solutions_lottery"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report solutions --manifest {input.manifest:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
