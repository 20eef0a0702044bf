# One-shot pruning after training: prune every trained cell at all keep levels, then tables and figures.


# Cheap steps run on the submitting host, not as cluster jobs.
localrules:
    aggregate_oneshot,
    figures_oneshot,


rule prune_eval:
    input:
        model=run_file("model.pt"),
        metrics=run_file("metrics.json"),
    output:
        run_file("oneshot_prune.csv"),
    conda:
        CONDA_ENV
    log:
        cell_log("prune_eval"),
    params:
        run_dir=run_dir,
        prune=prune_json,
    resources:
        runtime=10,
        mem_mb=2000,
    shell:
        "python -m bench_powerprop prune-eval --run-dir {params.run_dir}"
        " --prune {params.prune:q} --out {output} > {log} 2>&1"


rule aggregate_oneshot:
    input:
        oneshot_prune_files,
    output:
        runs=experiment_file("tables/oneshot_runs.csv"),
        summary=experiment_file("tables/oneshot_summary.csv"),
        markdown=experiment_file("tables/oneshot_summary.md"),
    conda:
        CONDA_ENV
    log:
        experiment_log("aggregate_oneshot"),
    params:
        expected=expected_hashes_json,
        info=experiment_info_json,
    resources:
        runtime=10,
        mem_mb=2000,
    shell:
        "python -m bench_powerprop aggregate-oneshot --expected {params.expected:q}"
        " --experiment-info {params.info:q} --runs-out {output.runs} --summary-out {output.summary}"
        " --markdown-out {output.markdown} > {log} 2>&1"


rule figures_oneshot:
    input:
        runs=experiment_file("tables/oneshot_runs.csv"),
        models=histogram_models,
    output:
        accuracy=experiment_file("figures/oneshot_accuracy_vs_weights_remaining.png"),
        histograms=experiment_file("figures/weight_histograms.png"),
    conda:
        CONDA_ENV
    log:
        experiment_log("figures_oneshot"),
    params:
        title=experiment_title,
    resources:
        runtime=10,
        mem_mb=2000,
    shell:
        "python -m bench_powerprop figures-oneshot --runs {input.runs} --models {input.models}"
        " --title {params.title:q} --accuracy-figure {output.accuracy}"
        " --histogram-figure {output.histograms} > {log} 2>&1"
