# Gradient flow (kind: gradflow): every cell is trained by the `train` rule with the gradient-norm probe
# on (train.gradient_norm_every / gradient_norm_steps: gradient_norms.csv in its run directory); then the
# tidy tables (final accuracy, every probe), a summary and the gradient-norm-vs-step figure.


localrules:
    aggregate_gradflow,
    figures_gradflow,


rule aggregate_gradflow:
    input:
        manifest=experiment_file("manifest.json"),
        metrics=cell_files_of("metrics.json"),
    output:
        runs=experiment_file("tables/gradflow_runs.csv"),
        summary=experiment_file("tables/gradflow_summary.csv"),
        norms=experiment_file("tables/gradflow_norms.csv"),
        markdown=experiment_file("tables/gradflow_summary.md"),
        page=report(
            experiment_file("tables/gradflow_summary.html"),
            caption="../report/gradflow_summary.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=TABLES,
            labels={"table": "gradient flow: accuracy and gradient norms"},
        ),
    log:
        experiment_log("aggregate_gradflow"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report tables --manifest {input.manifest}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule figures_gradflow:
    input:
        manifest=experiment_file("manifest.json"),
        runs=experiment_file("tables/gradflow_runs.csv"),
    output:
        report(
            experiment_file("figures/gradflow_gradient_norm_vs_step.png"),
            caption="../report/gradflow_norms.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=GRADIENT_FLOW_FIGURES,
            labels={"figure": "gradient norm vs. training step"},
        ),
    log:
        experiment_log("figures_gradflow"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report figures --manifest {input.manifest}"
        " --out-dir {params.out_dir} > {log} 2>&1"
