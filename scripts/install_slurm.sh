#!/usr/bin/env bash
# Install what tests/slurm/cluster.py needs for a local single-node SLURM
# test cluster: Debian's slurm-wlm (slurmctld, slurmd, client tools) and munge.
# No slurmdbd/mariadb: the tests query job states with squeue.
#
# Idempotent and quiet: exits 0 at once when everything is installed.
# Needs root (or passwordless sudo) to install; without it, it only reports.
set -euo pipefail

need=()
for bin in slurmctld slurmd sbatch srun squeue sinfo scontrol scancel munged munge; do
    command -v "$bin" >/dev/null 2>&1 || need+=("$bin")
done
[ "${#need[@]}" -eq 0 ] && exit 0

source "$(dirname "$0")/apt_install.sh"
apt_install install_slurm.sh slurm-wlm munge
