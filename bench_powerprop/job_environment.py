"""The environment of the jobs Snakemake starts (set once while the workflow is parsed)."""

from __future__ import annotations

import os
import sys


def export_job_environment(repo_dir: str) -> None:
    """Jobs run ``python -m bench_powerprop``: make ``python`` the interpreter running Snakemake
    (also when its venv is not activated) and the package importable without installing it.
    Under ``--sdm conda`` the rule's env is activated afterwards, so its python wins."""
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_dir), os.environ.get("PYTHONPATH")]))
