"""Finished cells whose files were damaged afterwards are found when the workflow is planned.

Snakemake decides what to rerun from file existence, times and recorded parameters; a finished
cell whose ``metrics.json`` was truncated, or whose ``model.pt`` was deleted or cut short, would
otherwise stay "up to date" next to its old tables. Training records the size of every file it
wrote in ``metrics.json`` (``outputs``); a file that is missing, of another size, or a
``metrics.json`` that does not parse marks the cell damaged. On a real run (``repair``) the
damaged cell's outputs are removed, so Snakemake retrains it (resuming from its checkpoints) and
rebuilds everything downstream; a dry run only reports it. Torch-free.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TRAIN_OUTPUTS = ("metrics.json", "model.pt", "train_log.csv", "run.json", "snapshots")


#: Snakemake options that only plan, draw or inspect: the workflow then reports damage but changes nothing.
INSPECTING_OPTIONS = ("--dry-run", "--dryrun", "--lint", "--report", "--summary", "--detailed-summary", "--list", "--dag",
                      "--rulegraph", "--filegraph", "--d3dag", "--unlock", "--cleanup-metadata", "--touch", "--list-changes")
INSPECTING_SHORT_FLAGS = set("nSDt")


def runs_jobs(argv: list[str]) -> bool:
    """Whether a Snakemake command line will execute jobs (not ``-n``, ``--lint``, ``--report``, ...).

    Snakemake chooses its dry-run executor only after the workflow is parsed, so the command line
    is the one place where the workflow can tell, while it is parsed, that nothing will run.
    """
    for argument in argv[1:]:
        if argument.startswith("--") and argument.split("=")[0].startswith(INSPECTING_OPTIONS):
            return False
        if argument.startswith("-") and not argument.startswith("--") and argument[1:].isalpha() \
                and INSPECTING_SHORT_FLAGS & set(argument[1:]):
            return False
    return True


def damage(run_dir: str | Path, cell_files: tuple[str, ...] = ()) -> str | None:
    """Why a finished cell's files cannot be trusted, or None (also for a cell not finished yet)."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        return None
    try:
        recorded = json.loads(metrics_path.read_text()).get("outputs", {})
    except (ValueError, OSError):
        return "metrics.json is not valid JSON"
    for name, size in recorded.items():
        path = run_dir / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} when it was written"
    for name in cell_files:
        path = run_dir / name
        if path.exists() and path.stat().st_size == 0:
            return f"{name} is empty"
    return None


def remove_outputs(directory: str | Path, names: tuple[str, ...], keep_training: bool = False) -> None:
    """Remove the training outputs (unless ``keep_training``) and ``names`` below ``directory``."""
    for name in ((*names,) if keep_training else (*TRAIN_OUTPUTS, *names)):
        path = Path(directory) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
