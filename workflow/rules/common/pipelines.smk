# Helpers of workflow/rules/pipelines.smk: the inputs and outputs of every pipeline shape's table and
# figure rules, read from its declaration (bench_powerprop.pipelines.PIPELINES), and the one-shot pruning options.
from bench_powerprop.pipelines import first_seed_cells


def published_results_input(wildcards):
    """The published-numbers CSV (a relative path is read from the repository); [] when none is configured."""
    path = config.get("published_results", "")
    return [os.path.join(workflow.basedir, path)] if path else []


def published_curves_input(wildcards):
    """The published per-run curves (a relative path is read from the repository); [] when none is configured."""
    path = config.get("published_curves", "")
    return [os.path.join(workflow.basedir, path)] if path else []


def reference_runs(wildcards):
    """The tidy runs table of the experiment's ``reference`` experiment ([] when none is declared or active)."""
    return PLAN.reference_inputs(wildcards.experiment)


def histogram_models(wildcards):
    """The lowest seed of every trained configuration (one histogram panel each): its metrics.json, which
    stands for its model.pt."""
    return [
        f"{cell['run_dir']}/metrics.json"
        for cell in first_seed_cells(PLAN.manifest(wildcards.experiment)["cells"])
    ]


# one input function per name of bench_powerprop.pipelines.EXPERIMENT_INPUTS
EXPERIMENT_INPUT_FILES = {
    "published": published_results_input,
    "published_curves": published_curves_input,
    "reference": reference_runs,
    "histogram_models": histogram_models,
}


def report_inputs(pipeline, what):
    """The inputs of the pipeline's ``what`` ("tables" or "figures") rule: the manifest, every cell's
    metrics.json (tables) or the runs table (figures), the cell files and experiment-level inputs its
    ``Reads`` names, and every other experiment-level input as [] (one command line serves every kind).
    """
    reads = pipeline.tables_read if what == "tables" else pipeline.figures_read
    fixed = (
        {"metrics": cell_files_of("metrics.json")}
        if what == "tables"
        else {"runs": experiment_file(pipeline.tables["runs"])}
    )
    return {
        "manifest": experiment_file("manifest.json"),
        **fixed,
        **{name.split(".")[0]: cell_files_of(name) for name in reads.cell_files},
        **{
            name: files if name in reads.inputs else []
            for name, files in EXPERIMENT_INPUT_FILES.items()
        },
    }


def shown_output(pipeline, role, path):
    """A rule output; flagged for the report (caption, subcategory, label) when the pipeline shows it."""
    if role not in pipeline.shown:
        return experiment_file(path)
    shown = pipeline.shown[role]
    return report(
        experiment_file(path),
        caption=f"../report/{shown.caption}.rst",
        category=EXPERIMENT_CATEGORY,
        subcategory=shown.subcategory,
        labels={"table" if role == "page" else "figure": shown.label},
    )


def shown_outputs(pipeline, what):
    """The pipeline's ``what`` ("tables" or "figures") as a rule's named outputs."""
    outputs = pipeline.tables if what == "tables" else pipeline.figures
    return {
        role: shown_output(pipeline, role, path)
        for role, path in outputs.items()
        if role not in pipeline.tables_by_own_rule
    }


def prune_json(wildcards):
    """The one-shot pruning options of a cell's experiment (rule prune_eval of workflow/rules/oneshot.smk)."""
    return json.dumps(PLAN.experiment(wildcards.experiment)["prune"], sort_keys=True)
