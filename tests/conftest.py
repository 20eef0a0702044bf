import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `tests.slurm` is importable as a package
PYTHON = sys.executable
SNAKEMAKE = [PYTHON, "-m", "snakemake"]


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
    from bench_powerprop import portable_gemm

    portable_gemm.uninstall()  # a test that built a model in portable mode leaves torch's GEMM to the next one


def run_snakemake(*args, cwd=REPO, timeout=600, check=True, env=None):
    """Run the real Snakemake CLI on this repository's Snakefile."""
    command = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(cwd), *args]
    environment = {**os.environ, **(env or {})}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def assert_pipeline_outputs_written(experiment_dir, kind):
    """Every table, figure and page the pipeline kind declares exists in ``experiment_dir`` and is not empty."""
    from bench_powerprop.pipelines import PIPELINES

    for name in PIPELINES[kind].outputs:
        assert (experiment_dir / name).stat().st_size > 0, (str(experiment_dir), name)


@pytest.fixture
def workdir(tmp_path):
    """A scratch working directory for Snakemake with the repo's configs and profile reachable."""
    for name in ("configs", "profiles"):
        (tmp_path / name).symlink_to(REPO / name)
    return tmp_path


STYLESHEET = REPO / "workflow" / "report" / "style.css"


@pytest.fixture(scope="session")
def report_run(tmp_path_factory):
    """A tiny run of one experiment of every pipeline kind and its report, built with make run's options
    (shared by the report's browser test and the figure tests)."""
    import yaml

    from bench_powerprop.pipelines import tiny_report_config

    path = tmp_path_factory.mktemp("report")
    for name in ("configs", "profiles"):
        (path / name).symlink_to(REPO / name)
    tiny_report = path / "tiny_report.yaml"  # one tiny experiment of every kind, from the kinds' declarations
    tiny_report.write_text(yaml.safe_dump(tiny_report_config(), sort_keys=False, allow_unicode=True))
    run_snakemake("-c2", "--configfile", str(tiny_report), "--report", "results/report.html", "--report-after-run",
                  "--report-stylesheet", str(STYLESHEET), cwd=path)
    return path
