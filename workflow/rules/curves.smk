# Training curves of every active experiment, whatever its kind: loss and validation accuracy
# against the step from every cell's train_log.csv (bench_powerprop.reporting.curves); its
# target per active experiment: curves_targets() (common/report.smk). It depends on the experiment's
# runs table, which is rebuilt whenever a cell is (re)trained: one fan-in over the cells per
# experiment, as in a bare Snakefile (a training job writes train_log.csv before metrics.json).


localrules:
    training_curves,


rule training_curves:
    input:
        manifest=experiment_file("manifest.json"),
        runs=runs_table,
    output:
        report(
            experiment_file(TRAINING_CURVES),
            caption="../report/training_curves.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory=TRAINING_FIGURES,
            labels={"figure": "training curves: loss and validation accuracy"},
        ),
    log:
        experiment_log("training_curves"),
    conda:
        CONDA_ENV
    script:
        "../scripts/training_curves.py"
