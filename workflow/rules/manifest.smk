# The manifest of an experiment: its settings and every cell's run directory and spec hash, written
# once per experiment so that no rule gets an experiment-sized argument on its command line.
# A script, not `run:`: Snakemake writes a job's start marker after handing the job to its thread
# pool, and a `run:` block finishes within milliseconds, so its output predated its own start and
# the report's runtime statistics showed a negative runtime. A script starts its own Python first.


localrules:
    manifest,


rule manifest:
    output:
        experiment_file("manifest.json"),
    log:
        experiment_log("manifest"),
    conda:
        CONDA_ENV
    params:
        manifest=manifest_of,
    script:
        "../scripts/manifest.py"
