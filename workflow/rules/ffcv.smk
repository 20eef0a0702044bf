# FFCV .beton files of the datasets that declare them (data/datasets/_ffcv.py: cifar10, imagenet, ...),
# written once per experiment from the user's local copy (nothing is ever downloaded) by the dataset's
# own writer; the `train` rule of every cell of that experiment takes them as input (train_inputs).


rule write_beton:
    input:
        beton_sources,
    output:
        PLAN.beton_file("{experiment}", "{dataset}", "{stem}"),
    log:
        experiment_log("write_beton/{dataset}/{stem}"),
    conda:
        CONDA_ENV
    threads: beton_threads
    resources:
        runtime=beton_runtime,
        mem_mb=beton_mem_mb,
    params:
        data=beton_writer_data,
    shell:
        "python -m bench_powerprop beton write --data {params.data:q} --stem {wildcards.stem:q}"
        " --out {output:q} --num-workers {threads:q} > {log:q} 2>&1"
