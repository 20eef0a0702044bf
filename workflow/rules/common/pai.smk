# Helpers of workflow/rules/pai.smk.


def published_curves_input(wildcards):
    """The published per-run curves (a relative path is read from the repository); [] when none is configured."""
    path = config.get("published_curves", "")
    return [os.path.join(workflow.basedir, path)] if path else []


def reference_runs(wildcards):
    """The tidy runs table of the experiment's ``reference`` experiment ([] when none is declared or active)."""
    return PLAN.reference_inputs(wildcards.experiment)
