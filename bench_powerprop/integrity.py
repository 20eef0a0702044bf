"""Which results can still be trusted: damaged files, and the code version each result was made by.

Snakemake decides what to rerun from file existence, times and recorded parameters; a finished
cell whose ``metrics.json`` was truncated, or whose ``model.pt`` was deleted, cut short or replaced
by another cell's, would otherwise stay "up to date" next to its old tables. Training records a
fingerprint (size, modification time, SHA-256) of every file it wrote in ``metrics.json``
(``outputs``); a file that is missing, of another size, or whose content no longer hashes to the
recorded digest (checked only when its size or time changed), a ``metrics.json`` that does not
parse, or a ``metrics.json``, ``model.pt`` or snapshot that records another spec hash than the one
its run folder is named after (``…/h~<spec hash>``: moved or copied from another cell's folder;
docs/identity.md) marks the cell damaged. A training job first clears its folder of what an earlier
training left, and fingerprints only what it wrote. On a real run (``repair``) the damaged cell's outputs are removed,
so Snakemake retrains it (resuming from its checkpoints) and rebuilds everything downstream; a dry
run only reports it.

The *code version* of a cell (``code_version``) is the git commit, whether the tree was dirty, and
a hash of the package sources its training runs: every module but the workflow-only ones
(``WORKFLOW_ONLY``), the reporting and kinds packages, and the files of the *other* methods. Editing one
method's file therefore changes the code version of that method's cells only; editing shared
training code changes every cell's. Training records it in ``run.json`` and in every checkpoint, and
resumes only a checkpoint of the same version; ``python -m bench_powerprop status`` lists the cells
whose recorded version differs from the current one. Torch-free.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
from pathlib import Path

from bench_powerprop.identity import ModelFileError, folder_hash, recorded_spec_hash
from bench_powerprop.io import WRITE_ERRNOS, NotRegularFileError, file_sha256, git_state, read_json, write_error

#: What a training job writes into its run folder (metrics.json last, with the fingerprints of the others).
TRAIN_OUTPUTS = ("metrics.json", "model.pt", "train_log.csv", "gradient_norms.csv", "run.json", "snapshots")
PACKAGE = Path(__file__).resolve().parent
#: Package files that plan, check or report but never run inside a training job.
WORKFLOW_ONLY = ("__main__.py", "cli.py", "config.py", "integrity.py", "plan.py", "pipelines.py")
WORKFLOW_ONLY_PACKAGES = ("reporting", "kinds")


#: Snakemake options that only plan, draw or inspect: the workflow then reports damage but changes nothing.
INSPECTING_OPTIONS = ("--dry-run", "--dryrun", "--lint", "--report", "--summary", "--detailed-summary", "--list", "--dag",
                      "--rulegraph", "--filegraph", "--d3dag", "--unlock", "--cleanup-metadata", "--touch", "--list-changes")
INSPECTING_SHORT_FLAGS = set("nSDt")


def runs_jobs(argv: list[str]) -> bool:
    """Whether a Snakemake command line will execute jobs (not ``-n``, ``--lint``, ``--report``, ...).

    Snakemake chooses its dry-run executor only after the workflow is parsed, so the command line
    is the one place where the workflow can tell, while it is parsed, that nothing will run.
    ``--report PATH --report-after-run`` (what ``make run`` passes) runs the jobs, then writes the report.
    """
    after_run = "--report-after-run" in argv
    for argument in argv[1:]:
        name = argument.split("=")[0]
        if name.startswith("--report") and (name != "--report" or after_run):
            continue  # --report-after-run, --report-stylesheet: settings of the report, not an inspecting call
        if argument.startswith("--") and name.startswith(INSPECTING_OPTIONS):
            return False
        if argument.startswith("-") and not argument.startswith("--") and argument[1:].isalpha() \
                and INSPECTING_SHORT_FLAGS & set(argument[1:]):
            return False
    return True


# -- file fingerprints ---------------------------------------------------------------------------
def fingerprint(path: Path) -> dict:
    """What ``damage`` compares later: size, modification time (ns) and SHA-256 of the content."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_sha256(path)}


def fingerprint_mismatch(path: Path, recorded) -> str | None:
    """Why ``path`` is not the file recorded (``recorded``: a fingerprint, or a bare size from older runs)."""
    stat = path.stat()
    size = recorded if isinstance(recorded, int) else recorded["size"]
    if stat.st_size != size:
        return f"has {stat.st_size} bytes, {size} when it was written"
    if isinstance(recorded, dict) and stat.st_mtime_ns != recorded["mtime_ns"] and file_sha256(path) != recorded["sha256"]:
        return "is not the file training wrote (its SHA-256 differs)"
    return None


def damage(run_dir: str | Path, cell_files: tuple[str, ...] = (), spec_hash: str | None = None) -> str | None:
    """Why a finished cell's files cannot be trusted, or None (also for a cell not finished yet).

    ``spec_hash``: the spec the folder holds (default: the hash its name says, ``h~<hash>``); a
    ``metrics.json``, ``model.pt`` or snapshot recording another spec was moved or copied there from
    another cell's folder.
    """
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        return None
    try:
        metrics = read_json(metrics_path)
        recorded = metrics.get("outputs", {})
    except NotRegularFileError:
        return "metrics.json is not a regular file"
    except (ValueError, OSError, AttributeError):
        return "metrics.json is not valid JSON"
    expected = spec_hash or folder_hash(run_dir)
    if expected is not None and metrics.get("spec_hash") != expected:
        return (f"metrics.json holds the results of spec {metrics.get('spec_hash')!r}, not of {expected!r} (the folder's): "
                "moved or copied from another cell")
    for name, expected_file in recorded.items():
        path = run_dir / name
        link = next((part for part in (path, *path.parents) if part != run_dir and part.is_relative_to(run_dir)
                     and part.is_symlink()), None)
        if link is not None:
            return f"{link.relative_to(run_dir)} is a symbolic link (training writes only real files)"
        if not path.is_file():
            return f"{name} is missing"
        problem = fingerprint_mismatch(path, expected_file)
        if problem:
            return f"{name} {problem}"
    if expected is not None:
        problem = foreign_model_file(run_dir, expected)
        if problem:
            return problem
    for name in cell_files:
        path = run_dir / name
        if path.exists() and path.stat().st_size == 0:
            return f"{name} is empty"
    return None


def foreign_model_file(run_dir: Path, expected: str) -> str | None:
    """The first model file of a run folder (``model.pt``, ``snapshots/*.pt``) that records another spec than ``expected``."""
    snapshots = run_dir / "snapshots"
    for path in [run_dir / "model.pt", *(sorted(snapshots.glob("*.pt")) if snapshots.is_dir() else [])]:
        if not path.is_file():
            continue
        try:
            recorded = recorded_spec_hash(path)
        except ModelFileError as error:
            return str(error)
        if recorded != expected:
            return f"{path.relative_to(run_dir)} was written for spec {recorded!r}, not {expected!r} (the folder's)"
    return None


def clear_run_dir(run_dir: str | Path, patterns: tuple[str, ...] = ()) -> None:
    """Remove what an earlier training of this folder left (before a training job writes anything), so the
    folder never holds a file training did not write for this run: the training outputs, every pipeline's
    cell files (e.g. ``oneshot_prune.csv``, rebuilt from the new model) and files matching ``patterns``."""
    from bench_powerprop.pipelines import PIPELINES

    cell_files = tuple(sorted({name for pipeline in PIPELINES.values() for name in pipeline.cell_files}))
    remove_outputs(run_dir, cell_files)
    for pattern in patterns:
        for path in Path(run_dir).glob(pattern):
            path.unlink()


def written_files(run_dir: str | Path) -> list[Path]:
    """The files training wrote into a run folder that ``metrics.json`` fingerprints (every training output but itself)."""
    run_dir = Path(run_dir)
    found = []
    for name in TRAIN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            found += sorted(file for file in path.rglob("*") if file.is_file())
        elif path.is_file() and name != "metrics.json":
            found.append(path)
    return found


def remove_outputs(directory: str | Path, names: tuple[str, ...], keep_training: bool = False) -> None:
    """Remove the training outputs (unless ``keep_training``) and ``names`` below ``directory``."""
    for name in ((*names,) if keep_training else (*TRAIN_OUTPUTS, *names)):
        path = Path(directory) / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():  # a symlink goes, never what it points to
                path.unlink()
        except OSError as error:  # a read-only results tree: one line naming the file, not a traceback
            if error.errno not in WRITE_ERRNOS:
                raise
            raise write_error(Path(error.filename or path), error, "remove") from None


# -- code versions -------------------------------------------------------------------------------
@functools.cache
def _source_digests() -> dict[str, str]:
    """SHA-256 of every package source file, by path relative to the package."""
    return {str(path.relative_to(PACKAGE)): file_sha256(path) for path in sorted(PACKAGE.rglob("*.py"))}


def _method_files() -> dict[str, str]:
    """{method name: its registration file relative to the package} (torch-free: registrations import lazily)."""
    import sys

    from bench_powerprop.methods import METHODS

    return {name: str(Path(sys.modules[METHODS.get(name).__module__].__file__).resolve().relative_to(PACKAGE))
            for name in METHODS.names()}


def source_hash(method: str) -> str:
    """Hash of the sources a cell of ``method`` trains with (see the module docstring)."""
    others = {path for name, path in _method_files().items() if name != method}
    digest = hashlib.sha256()
    for path, file_digest in _source_digests().items():
        if path in WORKFLOW_ONLY or path.split("/")[0] in WORKFLOW_ONLY_PACKAGES or path in others:
            continue
        digest.update(f"{path}\0{file_digest}\n".encode())
    return digest.hexdigest()[:16]


def code_version(method: str) -> dict:
    """What ``run.json`` records of the code that trained a cell; ``source_hash`` alone decides staleness."""
    commit, dirty = git_state()
    return {"commit": commit, "dirty": dirty, "source_hash": source_hash(method)}


def recorded_code_version(run_dir: str | Path) -> dict | None:
    """The code version ``run.json`` recorded (None when missing or written before code versions were recorded)."""
    try:
        return read_json(Path(run_dir) / "run.json").get("code")
    except (OSError, ValueError, AttributeError):
        return None
