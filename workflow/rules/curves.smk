# Training curves of every active experiment, whatever its kind: loss and validation accuracy
# against the step from every cell's train_log.csv (bench_powerprop.reporting.curves); its
# target per active experiment: curves_targets() (common/report.smk). A training job declares only
# metrics.json; its train_log.csv is written before it, and metrics.json stands for it.


localrules:
    training_curves,


rule training_curves:
    input:
        manifest=experiment_file("manifest.json"),
        metrics=cell_files_of("metrics.json"),
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
