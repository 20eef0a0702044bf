# The manifest rule's action, run by Snakemake's script directive: the manifest (params) reaches it
# through Snakemake's own preamble, never a command line.
from bench_powerprop.plan import write_manifest

write_manifest(snakemake.output[0], snakemake.log[0], snakemake.params.manifest)  # noqa: F821 (set by Snakemake)
