# Deployment (bench_powerprop/deploy.py): the pruned and sparse-trained MLPs of the oneshot and
# sparse_training experiments in real sparse forms (CSR, channel-pruned dense), their stored size and
# latency measured against the dense model in one process; a table and a figure per experiment.


rule deploy:
    input:
        manifest=experiment_file("manifest.json"),
        runs=deploy_runs_table,
    output:
        table=experiment_file(DEPLOY_TABLE),
        markdown=experiment_file(DEPLOY_MARKDOWN),
        figure=report(
            experiment_file(DEPLOY_FIGURE),
            caption="../report/deploy.rst",
            category=EXPERIMENT_CATEGORY,
            subcategory="deployment: measured size and latency",
            labels={"figure": "deployed sparse networks: accuracy vs measured cost"},
        ),
    log:
        experiment_log("deploy"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop deploy --manifest {input.manifest:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
