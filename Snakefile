# bench_powerprop: `snakemake -c all` regenerates every table and figure of the active experiments.
# Another config: `snakemake -c all --configfile configs/<name>.yaml`. Cluster: see docs/cluster.md.


configfile: f"{workflow.basedir}/configs/default.yaml"


# Front page of `snakemake --report results/report.html` (make run builds it).
report: "workflow/report/workflow.rst"


# Helpers (config validation, the plan of every cell, paths), then the rules: training, the tables and figures
# of every kind (generated from bench_powerprop/kinds/) and each kind's own rules, the summary.
include: "workflow/rules/common/paths.smk"
include: "workflow/rules/common/train.smk"
include: "workflow/rules/common/ffcv.smk"
include: "workflow/rules/common/report.smk"
include: "workflow/rules/common/pipelines.smk"
include: "workflow/rules/common/deploy.smk"
include: "workflow/rules/manifest.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/pipelines.smk"


# the kinds' own rules (bench_powerprop/kinds/: rule_file)
for rule_file in rule_files():

    include: f"workflow/rules/{rule_file}"


include: "workflow/rules/ffcv.smk"
include: "workflow/rules/curves.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/deploy.smk"


# Training jobs of CPU-only local runs fork from one pre-warmed process (bench_powerprop.training.server).
onstart:
    start_train_server()


onsuccess:
    stop_train_server()


onerror:
    stop_train_server()


rule all:
    default_target: True
    input:
        all_targets(),
        curves_targets(),
        report_targets(),
        deploy_targets(),
