# Training one grid cell (every pipeline shape starts here).


rule train:
    input:
        datasets=train_dataset_inputs,
        lineage=lineage_inputs,
    output:
        metrics=run_file("metrics.json"),
        model=run_file("model.pt"),
        log_csv=run_file("train_log.csv"),
        gradient_norms=run_file("gradient_norms.csv"),
        run_info=run_file("run.json"),
        snapshots=directory(run_file("snapshots")),
    log:
        cell_log("train"),
    conda:
        CONDA_ENV
    threads: train_threads
    resources:
        gpu=train_gpus,
        runtime=train_runtime,
        mem_mb=train_mem_mb,
    params:
        launcher=train_launcher,
        spec=train_spec_json,
        run_dir=run_dir,
        checkpoint_dir=checkpoint_dir,
    shell:
        "{params.launcher} -m bench_powerprop train --spec {params.spec:q}"
        " --run-dir {params.run_dir} --checkpoint-dir {params.checkpoint_dir} > {log} 2>&1"
