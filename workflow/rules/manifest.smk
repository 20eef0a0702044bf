# The manifest of an experiment: its settings and every cell's run directory and spec hash, written
# once per experiment so that no rule gets an experiment-sized argument on its command line.


localrules:
    manifest,


rule manifest:
    output:
        experiment_file("manifest.json"),
    log:
        experiment_log("manifest"),
    params:
        manifest=manifest_of,
    run:
        write_manifest(output[0], log[0], params.manifest)
