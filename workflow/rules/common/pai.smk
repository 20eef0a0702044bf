# Helpers of workflow/rules/pai.smk.


def reference_runs(wildcards):
    """The tidy runs table of the experiment's ``reference`` experiment ([] when none is declared or active)."""
    return PLAN.reference_inputs(wildcards.experiment)
