# Continual learning (kind: continual): every cell learns a whole task sequence in its `train` job
# (one phase per task, every task seen evaluated with its own mask after each task); then the tidy
# task-by-task table, the summaries and the figures (bench_powerprop.reporting.continual).


localrules:
    aggregate_continual,
    figures_continual,


rule aggregate_continual:
    input:
        manifest=experiment_file("manifest.json"),
        metrics=cell_files_of("metrics.json"),
    output:
        runs=experiment_file("tables/continual_runs.csv"),
        summary=experiment_file("tables/continual_summary.csv"),
        matrix=experiment_file("tables/continual_accuracy_matrix.csv"),
        markdown=experiment_file("tables/continual_summary.md"),
        page=report(
            experiment_file("tables/continual_summary.html"),
            caption="../report/continual_summary.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=TABLES,
            labels={"table": "continual learning: accuracy and capacity"},
        ),
    log:
        experiment_log("aggregate_continual"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report tables --manifest {input.manifest:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule figures_continual:
    input:
        manifest=experiment_file("manifest.json"),
        runs=experiment_file("tables/continual_runs.csv"),
    output:
        average=report(
            experiment_file("figures/continual_average_accuracy.png"),
            caption="../report/continual_average_accuracy.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=CONTINUAL_FIGURES,
            labels={"figure": "average accuracy over the tasks seen"},
        ),
        capacity=report(
            experiment_file("figures/continual_capacity.png"),
            caption="../report/continual_capacity.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=CONTINUAL_FIGURES,
            labels={"figure": "capacity used per task"},
        ),
        matrix=report(
            experiment_file("figures/continual_accuracy_matrix.png"),
            caption="../report/continual_accuracy_matrix.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=CONTINUAL_FIGURES,
            labels={"figure": "task-by-task accuracy matrix"},
        ),
    log:
        experiment_log("figures_continual"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report figures --manifest {input.manifest:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
