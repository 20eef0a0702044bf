# FFCV .beton files of the vision experiments (data.name cifar10 / imagenet), written once per
# experiment from the user's local copy (nothing is ever downloaded); the `train` rule of every
# cell of that experiment takes them as input (train_dataset_inputs in train.smk).


rule write_cifar10_beton:
    input:
        cifar10_batch_files,
    output:
        train=beton_file("cifar10", "train"),
        test=beton_file("cifar10", "test"),
    log:
        experiment_log("write_cifar10_beton"),
    conda:
        CONDA_ENV
    threads: beton_threads
    resources:
        runtime=beton_runtime,
        mem_mb=beton_mem_mb,
    params:
        src=cifar10_root,
    shell:
        "(python -m bench_powerprop beton write-cifar10 --src {params.src:q} --split train"
        " --out {output.train:q} --num-workers {threads:q}"
        " && python -m bench_powerprop beton write-cifar10 --src {params.src:q} --split test"
        " --out {output.test:q} --num-workers {threads:q}) > {log:q} 2>&1"


rule write_imagenet_beton:
    input:
        train=imagenet_train_dir,
        val=imagenet_val_dir,
    output:
        train=beton_file("imagenet", "train"),
        val=beton_file("imagenet", "val"),
    log:
        experiment_log("write_imagenet_beton"),
    conda:
        CONDA_ENV
    threads: beton_threads
    resources:
        runtime=beton_runtime,
        mem_mb=beton_mem_mb,
    params:
        options=imagenet_beton_options,
    shell:
        "(python -m bench_powerprop beton write-imagenet --src {input.train:q} --out {output.train:q}"
        " {params.options:q} --num-workers {threads:q}"
        " && python -m bench_powerprop beton write-imagenet --src {input.val:q} --out {output.val:q}"
        " {params.options:q} --num-workers {threads:q}) > {log:q} 2>&1"
