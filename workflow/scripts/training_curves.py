# The training_curves rule's action (workflow/rules/curves.smk).
from bench_powerprop.io import read_json
from bench_powerprop.reporting.curves import write_training_curves

write_training_curves(read_json(snakemake.input.manifest), snakemake.output[0])  # noqa: F821 (set by Snakemake)
