"""Smoke test of the SLURM execution path against a real local SLURM cluster.

Starts slurmctld + slurmd + munged on localhost (tests/slurm/cluster.py), runs
a tiny Snakefile through ``snakemake --workflow-profile profiles/slurm`` with
only the test-cluster overrides on the command line, and checks that every
rule ran as its own SLURM batch job (job id in the output, job record in the
slurmctld job-completion log) inside an ``srun`` step.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
try:
    from tests.slurm.fixtures import slurm_test_cluster
except ImportError:  # tests/ is not importable from sys.path: add repo root
    sys.path.insert(0, str(REPO))
    from tests.slurm.fixtures import slurm_test_cluster  # noqa: F401

PROFILE = REPO / "profiles" / "slurm"

_REPORT = (
    '(echo "job_id=${{SLURM_JOB_ID:-}}"; echo "step_id=${{SLURM_STEP_ID:-}}"; '
    'echo "cpus=${{SLURM_CPUS_PER_TASK:-}}"; echo "nproc=$(nproc)") > {output.txt}'
)

SNAKEFILE = textwrap.dedent(
    f"""
    rule all:
        input: "out/c.txt"

    rule a:
        output: txt="out/a.txt"
        log: "logs/a.log"
        resources: mem_mb=200, runtime=5
        shell: '{_REPORT} 2> {{log}}; echo "a ran on $(hostname)" >> {{log}}'

    rule b:
        output: txt="out/b.txt"
        log: "logs/b.log"
        threads: 2
        resources: mem_mb=300, runtime=5
        shell: '{_REPORT} 2> {{log}}; echo "b ran on $(hostname)" >> {{log}}'

    rule c:
        input: "out/a.txt", "out/b.txt"
        output: txt="out/c.txt"
        log: "logs/c.log"
        resources: mem_mb=200, runtime=5, gpu=0
        shell: '{_REPORT} 2> {{log}}; cat {{input}} >> {{log}}'
    """
)


def _read_report(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line
    )


def _tail(path: Path, n: int = 60) -> str:
    if not path.exists():
        return f"<{path} missing>"
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


@pytest.mark.slurm
@pytest.mark.timeout(240)
def test_snakemake_slurm_profile_runs_jobs_on_real_cluster(slurm_test_cluster, tmp_path):
    cluster = slurm_test_cluster
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "Snakefile").write_text(SNAKEFILE)

    env = dict(cluster.env)
    # rule shells on the node should find the same virtualenv tools
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    cmd = [
        sys.executable, "-m", "snakemake",
        "--workflow-profile", str(PROFILE),
        "--snakefile", str(wf / "Snakefile"),
        "--directory", str(wf),
        "--jobs", "3",
        *cluster.snakemake_args(),  # squeue status checks, 1 s init wait
    ]
    smk_log = tmp_path / "snakemake.log"
    t0 = time.monotonic()
    with smk_log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=wf, env=env, stdout=fh,
                              stderr=subprocess.STDOUT, timeout=200)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, (
        f"snakemake failed ({proc.returncode}) after {elapsed:.0f}s\n"
        f"--- snakemake:\n{_tail(smk_log)}\n"
        f"--- slurmctld:\n{_tail(cluster.slurmctld_log, 30)}"
    )

    completed = cluster.completed_jobs()
    reports = {}
    for rule in ("a", "b", "c"):
        out = wf / "out" / f"{rule}.txt"
        assert out.exists(), f"missing output {out}"
        assert (wf / "logs" / f"{rule}.log").exists(), f"missing log of rule {rule}"
        rep = _read_report(out)
        reports[rule] = rep
        job_id = rep.get("job_id", "")
        assert re.fullmatch(r"\d+", job_id), f"rule {rule} did not run in SLURM: {rep}"
        # the jobstep executor runs the rule inside `srun` (step 0 of the job)
        assert rep.get("step_id") == "0", f"rule {rule} not run via srun: {rep}"
        assert job_id in completed, (
            f"SLURM job {job_id} (rule {rule}) not in jobcomp log: {completed}"
        )
        assert completed[job_id]["JobState"] == "COMPLETED", completed[job_id]
        assert completed[job_id]["Partition"] == cluster.partition
        assert "gpu" not in completed[job_id].get("Tres", ""), completed[job_id]

    ids = {rep["job_id"] for rep in reports.values()}
    assert len(ids) == 3, f"expected one SLURM job per rule, got {reports}"
    # all jobs were submitted by the same snakemake run (job name = run uuid)
    assert len({completed[i]["Name"] for i in ids}) == 1
    # threads: 2 -> --cpus-per-task=2 for the batch job and the srun step
    assert completed[reports["b"]["job_id"]]["ProcCnt"] == "2"
    assert reports["b"]["cpus"] == "2" and reports["b"]["nproc"] == "2", reports["b"]
    assert completed[reports["a"]["job_id"]]["ProcCnt"] == "1"
    assert "mem=300M" in completed[reports["b"]["job_id"]]["Tres"]
