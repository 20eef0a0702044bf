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
    log:
        experiment_log("aggregate_adaptive_alpha"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report tables --manifest {input.manifest}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule figures_adaptive_alpha:
    input:
        manifest=experiment_file("manifest.json"),
        runs=experiment_file("tables/adaptive_oneshot_runs.csv"),
        metrics=cell_files_of("metrics.json"),
        models=histogram_models,
    output:
        accuracy=experiment_file("figures/adaptive_accuracy_vs_weights_remaining.png"),
        histograms=experiment_file("figures/adaptive_weight_histograms.png"),
        trace=experiment_file("figures/alpha_trace.png"),
    log:
        experiment_log("figures_adaptive_alpha"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report figures --manifest {input.manifest}"
        " --out-dir {params.out_dir} > {log} 2>&1"
