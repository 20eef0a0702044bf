"""Layering: what reads a trained model (one-shot evaluation, the reports) does not import the trainer."""

import subprocess
import sys

from conftest import REPO


def test_evaluation_and_reports_do_not_import_the_trainer():
    code = ("import sys; import bench_powerprop.evaluation, bench_powerprop.reporting.reports, bench_powerprop.cli; "
            "print('bench_powerprop.training.trainer' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
