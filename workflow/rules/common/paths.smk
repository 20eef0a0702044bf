# Config validation, the plan of every cell, and the path helpers every rule file uses.
# Everything derived from the config lives in Python (bench_powerprop.plan.Plan): these
# helpers only translate wildcards into Plan lookups, each O(1) per job.
import json
import os
import sys

sys.path.insert(0, workflow.basedir)

from bench_powerprop.cells import CELL_PATH_PATTERN, EXPERIMENT_PATTERN
from bench_powerprop.config import validate_or_exit
from bench_powerprop.job_environment import export_job_environment
from bench_powerprop.identity import RecordedAs
from bench_powerprop.integrity import runs_jobs
from bench_powerprop.io import WriteError
from bench_powerprop.plan import Plan, write_manifest

export_job_environment(workflow.basedir)

# the --configfile files as given, with validate's loader (limits, no YTE), then the config Snakemake merged
validate_or_exit(config, workflow.overwrite_configfiles)

PLAN = Plan(config)
try:
    PLAN.check_integrity(repair=workflow.is_main_process and runs_jobs(sys.argv))
except WriteError as error:  # a damaged cell in a read-only or full results tree
    sys.exit(f"bench_powerprop: {error}")
RESULTS = PLAN.results  # the cells (shared by every run name)
# this run's tables, figures, claims and report ({results_dir}/{run_name})
OUTPUTS = PLAN.outputs
CONDA_ENV = "../../environment.yml"


wildcard_constraints:
    experiment=EXPERIMENT_PATTERN,
    cell=CELL_PATH_PATTERN,


# -- paths (wildcards left in) ---------------------------------------------------------------
def run_file(name):
    """A file in a cell's run directory."""
    return f"{RESULTS}/{{experiment}}/runs/{{cell}}/{name}"


def cell_dir(root):
    """A cell's run folder below ``root`` (``{cell}`` ends in ``h~<spec hash>``)."""
    return f"{root}/{{experiment}}/runs/{{cell}}"


def cell_log(step):
    return f"{RESULTS}/{{experiment}}/logs/{step}/{{cell}}.log"


def experiment_file(name):
    return f"{OUTPUTS}/{{experiment}}/{name}"


def experiment_log(step):
    return f"{OUTPUTS}/{{experiment}}/logs/{step}.log"


# -- lookups by wildcards ----------------------------------------------------------------------
def cell_of(wildcards):
    return PLAN.cell(wildcards.experiment, wildcards.cell)


def experiment_dir(wildcards):
    return f"{OUTPUTS}/{wildcards.experiment}"


def cell_files_of(name):
    """Input function: ``name`` in the run directory of every cell of the experiment."""

    def files(wildcards):
        return [
            f"{PLAN.run_dir(cell)}/{name}"
            for cell in PLAN.cells_of(wildcards.experiment)
        ]

    files.__name__ = f"every_cell_{name.replace('.', '_')}"
    return files


def manifest_of(wildcards):
    return PLAN.manifest(wildcards.experiment)


def runs_table(wildcards):
    return PLAN.runs_table(wildcards.experiment)


def experiment_resource(name, default):
    """A training job's resource: one value when every active experiment gives the same
    (Snakemake then calls no function per job), else a per-experiment lookup."""
    values = {
        PLAN.experiment(experiment).get("resources", {}).get(name, default)
        for experiment in PLAN.grids
    }
    if len(values) == 1:
        return values.pop()

    def lookup(wildcards):
        return (
            PLAN.experiment(wildcards.experiment)
            .get("resources", {})
            .get(name, default)
        )

    lookup.__name__ = f"experiment_{name}"
    return lookup


# -- targets ---------------------------------------------------------------------------------
def all_targets():
    return PLAN.targets()
