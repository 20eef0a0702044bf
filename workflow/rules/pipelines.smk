# The tables and figures of every pipeline shape, generated from its declaration
# (bench_powerprop.pipelines.PIPELINES): aggregate_<kind> writes the tidy runs table, the summaries
# and the table page; figures_<kind> draws the figures from the runs table (bench_powerprop.reporting).
# Only the rules' arguments may read the loops' variables: a shell command is formatted when its job
# runs, after the loops have ended.


for kind, pipeline in PIPELINES.items():
    for step, what in (("aggregate", "tables"), ("figures", "figures")):

        rule:
            name:
                f"{step}_{kind}"
            input:
                **report_inputs(pipeline, what),
            output:
                **shown_outputs(pipeline, what),
            log:
                experiment_log(f"{step}_{kind}"),
            localrule: True
            conda:
                CONDA_ENV
            params:
                what=what,
                out_dir=experiment_dir,
            shell:
                "python -m bench_powerprop report {params.what:q} --manifest {input.manifest:q}"
                " --published {input.published:q} --published-curves {input.published_curves:q}"
                " --out-dir {params.out_dir:q} > {log:q} 2>&1"
