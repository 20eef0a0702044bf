"""make run's progress display: one line of jobs, cells trained, failures and time, Snakemake's log in a file,
Snakemake's exit status unchanged."""

import os
import re
import subprocess
import sys

import pytest

from bench_powerprop.snakemake_progress import Progress

from conftest import REPO

TINY = str(REPO / "tests" / "configs" / "tiny.yaml")
SUMMARY = "results/oneshot_digits/tables/oneshot_summary.md"


def run_with_progress(workdir, *snakemake_args):
    log = workdir / "snakemake.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "bench_powerprop", "run-snakemake", "--log", str(log), "--",
                             "-s", str(REPO / "Snakefile"), *snakemake_args], capture_output=True, text=True, cwd=workdir,
                            env=env, timeout=600)
    return result, log


def test_a_dry_run_shows_the_job_count_and_keeps_the_log(workdir):
    result, log = run_with_progress(workdir, SUMMARY, "-n", "-c1", "--configfile", TINY)
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == lines[-1] == f"Snakemake's full log: {workdir / 'snakemake.log'}"
    progress = [line for line in lines if line.startswith("jobs ")]
    assert progress and re.match(r"jobs 0/\d+ \| cells trained 0/\d+ \| failures 0 \| elapsed", progress[-1]), progress
    assert len(lines) < 10  # the per-job log is in the file, not on the terminal
    assert "Job stats:" in log.read_text() and "rule train:" in log.read_text()


def test_snakemakes_exit_status_and_the_end_of_its_log_come_through(workdir):
    direct = subprocess.run(["snakemake", "-s", str(REPO / "Snakefile"), "-n", "--configfile", "missing.yaml"],
                            capture_output=True, text=True, cwd=workdir)
    result, log = run_with_progress(workdir, "-n", "--configfile", "missing.yaml")
    assert direct.returncode != 0 and result.returncode == direct.returncode
    assert "missing.yaml" in result.stdout and "missing.yaml" in log.read_text()


def test_the_line_counts_what_snakemake_reports():
    """Lines as Snakemake 9.27 writes them (copied from a real run's log)."""
    progress = Progress(started=0.0)
    for line in ["Job stats:", "job                          count", "-------------------------  -------",
                 "manifest                         7", "train                           18", "total                           56",
                 "localrule train:", "    wildcards: experiment=sparse_digits, cell=method~gmp/variant~default/alpha~1",
                 "Finished jobid: 32 (Rule: train)", "1 of 56 steps (2%) done",
                 "Finished jobid: 41 (Rule: manifest)", "2 of 56 steps (4%) done"]:
        assert progress.read(line) is None
    assert progress.read("Error in rule train:") == "FAILED: rule train"
    log_line = "    log: results/x/logs/train/a.log (check log file(s) for error details)"
    assert progress.read(log_line) == "  its log: results/x/logs/train/a.log"
    assert progress.line(now=28.0) == "jobs 2/56 | cells trained 1/18 | failures 1 | elapsed 0:28 | left ~12:36"
    assert progress.current == "train experiment=sparse_digits, cell=method~gmp/variant~default/alpha~1"


@pytest.mark.slow
def test_a_real_run_ends_with_every_job_and_cell_counted(workdir):
    result, log = run_with_progress(workdir, SUMMARY, "-c2", "--configfile", TINY)
    assert result.returncode == 0, result.stdout
    last = [line for line in result.stdout.splitlines() if line.startswith("jobs ")][-1]
    done, total, trained, cells = map(int, re.match(r"jobs (\d+)/(\d+) \| cells trained (\d+)/(\d+)", last).groups())
    assert done == total > 0 and trained == cells > 0
    assert log.read_text().count("Finished jobid:") == total
