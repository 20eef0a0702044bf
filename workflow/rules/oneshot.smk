# One-shot pruning after training (kind: oneshot): prune every trained cell at all keep levels,
# then the tidy table, summaries and figures (bench_powerprop.reporting, spec "oneshot").


localrules:
    aggregate_oneshot,
    figures_oneshot,


rule prune_eval:
    input:
        model=run_file("model.pt"),
        metrics=run_file("metrics.json"),
    output:
        run_file("oneshot_prune.csv"),
    log:
        cell_log("prune_eval"),
    conda:
        CONDA_ENV
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        prune=prune_json,
    shell:
        "python -m bench_powerprop prune-eval --model {input.model}"
        " --prune {params.prune:q} --out {output} > {log} 2>&1"


rule aggregate_oneshot:
    input:
        manifest=experiment_file("manifest.json"),
        metrics=cell_files_of("metrics.json"),
        sweeps=cell_files_of("oneshot_prune.csv"),
    output:
        runs=experiment_file("tables/oneshot_runs.csv"),
        summary=experiment_file("tables/oneshot_summary.csv"),
        markdown=experiment_file("tables/oneshot_summary.md"),
        page=report(
            experiment_file("tables/oneshot_summary.html"),
            caption="../report/oneshot_summary.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=TABLES,
            labels={"table": "one-shot pruning: accuracy by weights kept"},
        ),
    log:
        experiment_log("aggregate_oneshot"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report tables --manifest {input.manifest}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule figures_oneshot:
    input:
        manifest=experiment_file("manifest.json"),
        runs=experiment_file("tables/oneshot_runs.csv"),
        models=histogram_models,
    output:
        accuracy=report(
            experiment_file("figures/oneshot_accuracy_vs_weights_remaining.png"),
            caption="../report/oneshot_accuracy.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=ACCURACY_FIGURES,
            labels={"figure": "one-shot pruning: accuracy vs. weights remaining"},
        ),
        histograms=report(
            experiment_file("figures/weight_histograms.png"),
            caption="../report/weight_histograms.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=WEIGHT_FIGURES,
            labels={"figure": "effective-weight magnitudes after training"},
        ),
        layer_histograms=report(
            experiment_file("figures/weight_histograms_per_layer.png"),
            caption="../report/weight_histograms_per_layer.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=WEIGHT_FIGURES,
            labels={"figure": "effective-weight magnitudes after training, per layer"},
        ),
    log:
        experiment_log("figures_oneshot"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report figures --manifest {input.manifest}"
        " --out-dir {params.out_dir} > {log} 2>&1"
