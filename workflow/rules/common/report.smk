# Helpers of workflow/rules/report.smk and of the report() flags of workflow/rules/pipelines.smk.
from bench_powerprop.config import applied_overrides
from bench_powerprop.io import git_commit, spec_hash
from bench_powerprop.pipelines import PIPELINES, TRAINING_FIGURES, rule_files
from bench_powerprop.reporting.curves import TRAINING_CURVES

# Report categories: one per experiment (its wildcard) and one for the claims and provenance.
EXPERIMENT_CATEGORY = "{experiment}"
SUMMARY_CATEGORY = "Reproduction summary"
# (Subcategories: bench_powerprop.pipelines, beside each output.)

CONFIG_HASH = spec_hash(config)
GIT_COMMIT = git_commit()
# A report built without running (`snakemake --report`) over cells that have no results says so on its
# front page (workflow/report/workflow.rst); after a run (--report-after-run) every cell has them.
if any(arg.split("=")[0] == "--report" for arg in sys.argv) and not runs_jobs(sys.argv):
    config["report_notice"] = PLAN.report_notice()
# the front page's claims table (workflow/report/workflow.rst), in this run's own outputs (run_name)
config["claims_overview"] = f"{PLAN.reproduction_dir}/claims_overview.html"
# the --set overrides of `make run SET=...`, shown on the provenance page: recorded by validate beside the merged
# config it wrote (never a config key, which any file could set)
OVERRIDE_ARGUMENTS = [
    f"--override={text}" for text in applied_overrides(workflow.overwrite_configfiles)
]


def reproduction_file(name):
    """A file of the reproduction summary (claims, provenance), beside the experiments' folders."""
    return f"{PLAN.reproduction_dir}/{name}"


def active_manifests(wildcards):
    return [PLAN.experiment_file(name, "manifest.json") for name in PLAN.grids]


def active_tables(wildcards):
    """Every table of every active experiment (each claim reads the one its kind names)."""
    return [
        PLAN.experiment_file(name, table)
        for name in PLAN.grids
        for table in PIPELINES[PLAN.experiment(name)["kind"]].tables.values()
    ]


def manifest_arguments(wildcards, input):
    """``--manifest PATH`` per manifest, as a list: the rule's ``:q`` quotes each element."""
    return [part for path in input.manifests for part in ("--manifest", path)]


def report_targets():
    return [
        reproduction_file(name)
        for name in (
            "claims.csv",
            "claims_overview.html",
            "claims.html",
            "provenance.html",
        )
    ]


def curves_targets():
    """The training curves of every active experiment (workflow/rules/curves.smk)."""
    return [PLAN.experiment_file(name, TRAINING_CURVES) for name in PLAN.grids]
