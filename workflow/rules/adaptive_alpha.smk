# Adaptive α (kind: adaptive_alpha): every cell trains with the adaptive_alpha method (adaptive or
# fixed α, α and the fraction |θ| < ε logged every K epochs); each trained model is pruned once at
# every keep level by the `prune_eval` rule of oneshot.smk; then the one-shot tables and figures
# beside the α traces (bench_powerprop.reporting.adaptive).


localrules:
    aggregate_adaptive_alpha,
    figures_adaptive_alpha,


rule aggregate_adaptive_alpha:
    input:
        manifest=experiment_file("manifest.json"),
        metrics=cell_files_of("metrics.json"),
        sweeps=cell_files_of("oneshot_prune.csv"),
    output:
        runs=experiment_file("tables/adaptive_oneshot_runs.csv"),
        summary=experiment_file("tables/adaptive_oneshot_summary.csv"),
        markdown=experiment_file("tables/adaptive_alpha_summary.md"),
        trace=experiment_file("tables/alpha_trace.csv"),
        page=report(
            experiment_file("tables/adaptive_alpha_summary.html"),
            caption="../report/adaptive_alpha_summary.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=TABLES,
            labels={"table": "adaptive α: one-shot pruning and final α"},
        ),
    log:
        experiment_log("aggregate_adaptive_alpha"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report tables --manifest {input.manifest:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule figures_adaptive_alpha:
    input:
        manifest=experiment_file("manifest.json"),
        runs=experiment_file("tables/adaptive_oneshot_runs.csv"),
        metrics=cell_files_of("metrics.json"),
        models=histogram_models,
    output:
        accuracy=report(
            experiment_file("figures/adaptive_accuracy_vs_weights_remaining.png"),
            caption="../report/adaptive_accuracy.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=ACCURACY_FIGURES,
            labels={"figure": "adaptive vs. fixed α: one-shot pruning accuracy"},
        ),
        histograms=report(
            experiment_file("figures/adaptive_weight_histograms.png"),
            caption="../report/adaptive_weight_histograms.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=WEIGHT_FIGURES,
            labels={"figure": "effective-weight magnitudes after training"},
        ),
        trace=report(
            experiment_file("figures/alpha_trace.png"),
            caption="../report/alpha_trace.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=ALPHA_FIGURES,
            labels={"figure": "α and the fraction of |θ| < ε over training"},
        ),
    log:
        experiment_log("figures_adaptive_alpha"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report figures --manifest {input.manifest:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
