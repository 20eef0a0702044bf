# bench_powerprop: `snakemake -c all` regenerates every table and figure of the active experiments.
# Another config: `snakemake -c all --configfile configs/<name>.yaml`. Cluster: see README.


configfile: f"{workflow.basedir}/configs/default.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/oneshot.smk"
include: "workflow/rules/sparse.smk"
include: "workflow/rules/ffcv.smk"


rule all:
    input:
        all_targets(),
    default_target: True
