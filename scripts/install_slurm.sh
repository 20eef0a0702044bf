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

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "install_slurm.sh: missing ${need[*]}; run as root to install slurm-wlm and munge" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_slurm.sh: apt-get not found; install SLURM (slurmctld, slurmd, client) and munge by hand" >&2
    exit 1
fi

log=$(mktemp /tmp/install_slurm.XXXXXX.log)
export DEBIAN_FRONTEND=noninteractive
if ! { "${SUDO[@]}" apt-get update -qq \
       && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends slurm-wlm munge; } >"$log" 2>&1; then
    echo "install_slurm.sh: apt-get failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
fi
rm -f "$log"
