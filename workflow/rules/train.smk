# Training one grid cell (every pipeline shape starts here). The job also writes model.pt, run.json,
# train_log.csv, gradient_norms.csv and snapshots/ into the run directory; it declares only metrics.json, written
# last with the fingerprint of every other file, which stands for them as the input of every later rule: what
# Snakemake plans per job grows with what a job declares, and bench_powerprop.integrity rebuilds a finished cell
# whose files went missing or changed.


rule train:
    input:
        TRAIN_INPUTS,
    output:
        run_file("metrics.json"),
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
        checkpoint_dir=checkpoint_location,
    shell:
        "python -m bench_powerprop train --spec {params.spec:q} --processes {resources.gpu:q}"
        " --run-dir {params.run_dir:q} --checkpoint-dir {params.checkpoint_dir:q}"
        " --mem-mb {resources.mem_mb:q} > {log:q} 2>&1"
