# Training one grid cell (every pipeline shape starts here).


rule train:
    input:
        unpack(train_inputs),
    output:
        metrics=run_file("metrics.json"),
        model=run_file("model.pt"),
        log_csv=run_file("train_log.csv"),
        gradient_norms=run_file("gradient_norms.csv"),
        run_info=run_file("run.json"),
        snapshots=run_file("snapshots/index.json"),
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
        spec=train_spec_json,
        run_dir=cell_dir(RESULTS),
        checkpoint_dir=cell_dir(PLAN.checkpoints),
    shell:
        "python -m bench_powerprop train --spec {params.spec:q} --processes {resources.gpu:q}"
        " --run-dir {params.run_dir:q} --checkpoint-dir {params.checkpoint_dir:q}"
        " --mem-mb {resources.mem_mb:q} > {log:q} 2>&1"
