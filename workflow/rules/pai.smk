# Pruning at initialisation (kind: pai): every cell is trained by the `train` rule (its method scores the
# initial weights, fixes the mask and trains it); then the tidy table, a summary with the reference
# experiment's rows and published numbers of other settings, and the accuracy-vs-weights-remaining figure.


localrules:
    aggregate_pai,
    figures_pai,


rule aggregate_pai:
    input:
        manifest=experiment_file("manifest.json"),
        metrics=cell_files_of("metrics.json"),
        published=published_results_input,
        reference=reference_runs,
    output:
        runs=experiment_file("tables/pai_runs.csv"),
        summary=experiment_file("tables/pai_summary.csv"),
        markdown=experiment_file("tables/pai_summary.md"),
        page=report(
            experiment_file("tables/pai_summary.html"),
            caption="../report/pai_summary.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=TABLES,
            labels={"table": "pruning at init: accuracy by scorer and sparsity"},
        ),
    log:
        experiment_log("aggregate_pai"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report tables --manifest {input.manifest:q} --published {input.published:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule figures_pai:
    input:
        manifest=experiment_file("manifest.json"),
        runs=experiment_file("tables/pai_runs.csv"),
        reference=reference_runs,
        curves=published_curves_input,
    output:
        report(
            experiment_file("figures/pai_accuracy_vs_weights_remaining.png"),
            caption="../report/pai_accuracy.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=ACCURACY_FIGURES,
            labels={"figure": "pruning at init: accuracy vs. weights remaining"},
        ),
    log:
        experiment_log("figures_pai"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report figures --manifest {input.manifest:q}"
        " --published-curves {input.curves:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
