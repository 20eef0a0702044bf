"""The shipped SLURM profile runs a slice of the real workflow on a live slurmctld/slurmd,
and its results equal those of a local run."""

import os
import sys

import pytest

from tests.slurm.fixtures import slurm_test_cluster  # noqa: F401  (a fixture, used by name)

from conftest import REPO, run_snakemake
from helpers import run_folder

SLICE = str(REPO / "tests" / "configs" / "tiny_slurm.yaml")
TABLE = "results/oneshot_digits/tables/oneshot_runs.csv"


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_workflow_slice_through_shipped_slurm_profile(slurm_test_cluster, tmp_path):  # noqa: F811
    cluster = slurm_test_cluster
    on_slurm, local = tmp_path / "slurm_run", tmp_path / "local_run"
    for directory in (on_slurm, local):
        directory.mkdir()
        (directory / "configs").symlink_to(REPO / "configs")
    env = {**cluster.env, "PATH": os.path.dirname(sys.executable) + os.pathsep + cluster.env.get("PATH", "")}

    run_snakemake("--workflow-profile", str(REPO / "profiles" / "slurm"), "--configfile", SLICE,
                  "--jobs", "4", *cluster.snakemake_args(), cwd=on_slurm, env=env, timeout=240)
    run_snakemake("-c2", "--configfile", SLICE, cwd=local)

    jobs = cluster.completed_jobs()
    assert sum(job["JobState"] == "COMPLETED" for job in jobs.values()) >= 4  # 2 train + 2 prune_eval
    assert (on_slurm / TABLE).read_text() == (local / TABLE).read_text()
    run_info = (run_folder(on_slurm / "results/oneshot_digits/runs/method~dense/variant~default/alpha~2/sparsity~0/seed~0")
                / "run.json").read_text()
    assert '"SLURM_JOB_ID"' in run_info
