"""pytest fixture around :func:`tests.slurm.cluster.slurm_cluster`.

Import it into a test module (no conftest needed)::

    from tests.slurm.fixtures import slurm_test_cluster  # noqa: F401

    @pytest.mark.slurm
    def test_x(slurm_test_cluster):
        cluster = slurm_test_cluster          # a SlurmCluster
        ... cluster.snakemake_args(), cluster.env, cluster.completed_jobs()

Skips the test when not running as root; fails with the daemon log tails
when the cluster does not come up.
"""

from __future__ import annotations

import os

import pytest

from .cluster import SlurmCluster, slurm_cluster


@pytest.fixture
def slurm_test_cluster(tmp_path) -> SlurmCluster:
    if os.geteuid() != 0:
        pytest.skip("starting a SLURM test cluster needs root (writes "
                    "/etc/slurm/slurm.conf, runs slurmctld/slurmd/munged)")
    with slurm_cluster(tmp_path / "slurm-cluster") as cluster:
        yield cluster
