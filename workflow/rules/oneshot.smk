# One-shot pruning after training (kinds oneshot and adaptive_alpha: their rule_file): prune every trained
# cell at all keep levels (its tables and figures: workflow/rules/pipelines.smk).


rule prune_eval:
    input:
        run_file("metrics.json"),
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
        model=run_file("model.pt"),
        prune=prune_json,
    shell:
        "python -m bench_powerprop prune-eval --model {params.model:q}"
        " --prune {params.prune:q} --out {output:q} > {log:q} 2>&1"
