# Training curves of every active experiment, whatever its kind: loss and validation accuracy
# against the step from every cell's train_log.csv (bench_powerprop.reporting.curves); its
# target per active experiment: curves_targets() (common/report.smk).


localrules:
    training_curves,


rule training_curves:
    input:
        manifest=experiment_file("manifest.json"),
        logs=cell_files_of("train_log.csv"),
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
