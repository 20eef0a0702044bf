"""Helpers to run a real single-node SLURM cluster on localhost for tests.

See :func:`tests.slurm.cluster.slurm_cluster`.
"""

from .cluster import SlurmCluster, SlurmClusterError, slurm_cluster

__all__ = ["SlurmCluster", "SlurmClusterError", "slurm_cluster"]
