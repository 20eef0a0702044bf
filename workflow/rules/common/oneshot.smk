# Helpers of workflow/rules/oneshot.smk.


def prune_json(wildcards):
    return json.dumps(PLAN.experiment(wildcards.experiment)["prune"], sort_keys=True)
