# Helpers of workflow/rules/oneshot.smk.


def prune_json(wildcards):
    return json.dumps(PLAN.experiment(wildcards.experiment)["prune"], sort_keys=True)


def histogram_models(wildcards):
    """model.pt of the lowest seed of every trained configuration (one histogram panel each)."""
    from bench_powerprop.pipelines import first_seed_cells

    return [
        f"{cell['run_dir']}/model.pt"
        for cell in first_seed_cells(PLAN.manifest(wildcards.experiment)["cells"])
    ]
