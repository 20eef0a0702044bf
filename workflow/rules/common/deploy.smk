# Helpers of workflow/rules/deploy.smk.
from bench_powerprop.pipelines import (
    DEPLOY_FIGURE,
    DEPLOY_MARKDOWN,
    DEPLOY_TABLE,
    deployable_experiment,
)


def deploy_runs_table(wildcards):
    """The experiment's runs table: written once every cell (and its one-shot sweep) is done."""
    kind = PLAN.experiment(wildcards.experiment)["kind"]
    return PLAN.experiment_file(wildcards.experiment, PIPELINES[kind].tables["runs"])


def deploy_targets():
    """The deployment table, page and figure of every active oneshot / sparse_training MLP experiment."""
    return [
        PLAN.experiment_file(name, path)
        for name in PLAN.grids
        if deployable_experiment(PLAN.experiment(name))
        for path in (DEPLOY_TABLE, DEPLOY_MARKDOWN, DEPLOY_FIGURE)
    ]
