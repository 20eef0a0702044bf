# One-shot pruning after training: prune every trained cell at all keep levels, then tables and figures.


def oneshot_targets(experiment):
    names = [
        "tables/oneshot_runs.csv",
        "tables/oneshot_summary.csv",
        "tables/oneshot_summary.md",
        "figures/oneshot_accuracy_vs_weights_remaining.png",
        "figures/weight_histograms.png",
    ]
    return [f"{RESULTS}/{experiment}/{name}" for name in names]


def oneshot_prune_files(wildcards):
    return cell_files(wildcards.experiment, "oneshot_prune.csv")


def histogram_models(wildcards):
    """model.pt of the lowest seed of every α (one histogram panel per α)."""
    first_seed = {}
    for cell in cells_of(wildcards.experiment):
        first_seed.setdefault(cell.alpha, cell)
    return [f"{run_dir_of(cell)}/model.pt" for cell in first_seed.values()]


def experiment_title(wildcards):
    return f"{wildcards.experiment} ({experiment_config(wildcards.experiment)['data']['name']})"


rule prune_eval:
    input:
        model=run_file("model.pt"),
        metrics=run_file("metrics.json"),
    output:
        run_file("oneshot_prune.csv"),
    log:
        cell_log("prune_eval"),
    params:
        run_dir=run_dir,
        prune=prune_json,
        python=PYTHON,
    resources:
        runtime=10,
        mem_mb=2000,
    shell:
        "{params.python} -m bench_powerprop prune-eval --run-dir {params.run_dir}"
        " --prune {params.prune:q} --out {output} > {log} 2>&1"


rule aggregate_oneshot:
    input:
        oneshot_prune_files,
    output:
        runs=experiment_file("tables/oneshot_runs.csv"),
        summary=experiment_file("tables/oneshot_summary.csv"),
        markdown=experiment_file("tables/oneshot_summary.md"),
    log:
        experiment_log("aggregate_oneshot"),
    params:
        expected=expected_hashes_json,
        info=experiment_info_json,
        python=PYTHON,
    resources:
        runtime=10,
        mem_mb=2000,
    shell:
        "{params.python} -m bench_powerprop aggregate-oneshot --expected {params.expected:q}"
        " --experiment-info {params.info:q} --runs-out {output.runs} --summary-out {output.summary}"
        " --markdown-out {output.markdown} > {log} 2>&1"


rule figures_oneshot:
    input:
        runs=experiment_file("tables/oneshot_runs.csv"),
        models=histogram_models,
    output:
        accuracy=experiment_file("figures/oneshot_accuracy_vs_weights_remaining.png"),
        histograms=experiment_file("figures/weight_histograms.png"),
    log:
        experiment_log("figures_oneshot"),
    params:
        title=experiment_title,
        python=PYTHON,
    resources:
        runtime=10,
        mem_mb=2000,
    shell:
        "{params.python} -m bench_powerprop figures-oneshot --runs {input.runs} --models {input.models}"
        " --title {params.title:q} --accuracy-figure {output.accuracy}"
        " --histogram-figure {output.histograms} > {log} 2>&1"
