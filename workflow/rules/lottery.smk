# Lottery tickets (kind lottery: its rule_file): besides the tables and figures every kind gets (workflow/rules/pipelines.smk),
# each level's distance to its pruning solution and the seed-pair ensemble gains, from every cell's model
# (bench_powerprop.reporting.lottery).


localrules:
    solutions_lottery,


rule solutions_lottery:
    input:
        manifest=experiment_file("manifest.json"),
        trained=cell_files_of("metrics.json"),  # stands for every cell's model.pt
    output:
        solutions=experiment_file("tables/lottery_solutions.csv"),
        ensembles=experiment_file("tables/lottery_ensembles.csv"),
    log:
        experiment_log("solutions_lottery"),
    conda:
        CONDA_ENV
    params:
        out_dir=experiment_dir,
    shell:
        "python -m bench_powerprop report solutions --manifest {input.manifest:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
