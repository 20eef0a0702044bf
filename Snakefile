# bench_powerprop: `snakemake -c all` regenerates every table and figure of the active experiments.
# Another config: `snakemake -c all --configfile configs/<name>.yaml`. Cluster: see README.


configfile: f"{workflow.basedir}/configs/default.yaml"


# Front page of `snakemake --report results/report.html` (make run builds it).
report: "workflow/report/workflow.rst"


# Helpers (config validation, the plan of every cell, paths), then one rule file per pipeline shape.
include: "workflow/rules/common/paths.smk"
include: "workflow/rules/common/train.smk"
include: "workflow/rules/common/oneshot.smk"
include: "workflow/rules/common/ffcv.smk"
include: "workflow/rules/common/report.smk"
include: "workflow/rules/common/pai.smk"
include: "workflow/rules/manifest.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/oneshot.smk"
include: "workflow/rules/sparse.smk"
include: "workflow/rules/continual.smk"
include: "workflow/rules/adaptive_alpha.smk"
include: "workflow/rules/pai.smk"
include: "workflow/rules/lottery.smk"
include: "workflow/rules/gradflow.smk"
include: "workflow/rules/ffcv.smk"
include: "workflow/rules/curves.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        curves_targets(),
        report_targets(),
