"""Results always reflect the config and code that made them.

Deleted or swapped results are rebuilt by the next ``snakemake`` run (and a dry run lists the same
jobs); ``python -m bench_powerprop status`` lists every cell that is missing, damaged or stale by
config or code, and the command it prints retrains exactly the cells stale by code; a checkpoint
is resumed only by its own cell and code.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from bench_powerprop.cells import make_cell
from bench_powerprop.config import load_yaml, merge_configs
from bench_powerprop.deploy import TIMING_COLUMNS
from bench_powerprop.pipelines import DEPLOY_TABLE
from bench_powerprop.plan import Plan

from conftest import PYTHON, REPO, run_snakemake
from helpers import digits_spec, train_command

CONFIG = """\
active_experiments: [oneshot_digits]
experiments:
  oneshot_digits:
    train: {steps: 20, log_every: 10, eval_every: 20, checkpoint_every: 10}
    grid:
      - {method: [dense], alpha: [1, 2], sparsity: [0], seed: [0]}
      - {method: [static], alpha: [2], sparsity: [0.5], seed: [0]}
    prune:
      keep_levels: [0.2, 1.0]
"""
RUNS = "results/oneshot_digits/runs"


def run_dir(method, alpha, sparsity) -> str:
    """The cell's run folder (``…/h~<spec hash>``) under ``CONFIG`` merged over the default config."""
    config = merge_configs(load_yaml(REPO / "configs" / "default.yaml"), yaml.safe_load(CONFIG))
    return Plan(config).run_dir(make_cell("oneshot_digits", method=method, alpha=alpha, sparsity=sparsity, seed=0))


DENSE_1, DENSE_2, STATIC = run_dir("dense", 1, 0), run_dir("dense", 2, 0), run_dir("static", 2, 0.5)
TABLE = "results/oneshot_digits/tables/oneshot_runs.csv"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workdir where the three cells and their tables were made by one ``snakemake`` run."""
    workdir = tmp_path_factory.mktemp("trained")
    for name in ("configs", "profiles"):
        (workdir / name).symlink_to(REPO / name)
    (workdir / "grid.yaml").write_text(CONFIG)
    run_snakemake("-c2", "--configfile", "grid.yaml", cwd=workdir)
    return workdir


@pytest.fixture
def workdir(trained, tmp_path):
    """A private copy of ``trained`` (times kept), to damage."""
    copy = tmp_path / "work"
    shutil.copytree(trained, copy, symlinks=True)
    return copy


def status(workdir, *extra, code=REPO):
    result = subprocess.run([PYTHON, "-m", "bench_powerprop", "status", "configs/default.yaml", "grid.yaml", *extra],
                            cwd=workdir, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(code)})
    assert result.returncode == (1 if "a run (make run" in result.stdout else 0), result.stdout + result.stderr
    return result.stdout


def planned_jobs(result) -> dict[str, int]:
    """Job counts of a dry run's "Job stats" table."""
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.MULTILINE) if rule != "total"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_deleted_run_directory_or_metrics_json_is_retrained_with_its_tables(workdir):
    shutil.rmtree(workdir / DENSE_1)
    (workdir / STATIC / "metrics.json").unlink()
    untouched = (workdir / DENSE_2 / "metrics.json").stat().st_mtime_ns
    table_time = (workdir / TABLE).stat().st_mtime_ns
    listed = status(workdir)
    assert f"{DENSE_1}: missing: not trained (no metrics.json)" in listed
    assert f"{STATIC}: missing: not trained (no metrics.json)" in listed and "3 cells: 1 up to date, 2 missing" in listed

    planned = run_snakemake("-n", "--configfile", "grid.yaml", cwd=workdir)
    assert "Nothing to be done" not in planned.stdout + planned.stderr
    jobs = planned_jobs(planned)
    assert jobs["train"] == 2 and jobs["aggregate_oneshot"] == 1 and jobs["prune_eval"] == 2

    run_snakemake("-c2", "--configfile", "grid.yaml", cwd=workdir)
    for cell in (DENSE_1, STATIC):
        assert json.loads((workdir / cell / "metrics.json").read_text())["steps"] == 20
    assert (workdir / DENSE_2 / "metrics.json").stat().st_mtime_ns == untouched
    assert (workdir / TABLE).stat().st_mtime_ns > table_time
    assert len((workdir / TABLE).read_text().splitlines()) == 1 + 3 * 2  # header + one row per keep level per cell
    again = run_snakemake("-n", "--configfile", "grid.yaml", cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert "3 cells: 3 up to date" in status(workdir)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_model_replaced_by_another_cells_is_found_and_repaired(workdir):
    replaced, source = workdir / DENSE_1 / "model.pt", workdir / DENSE_2 / "model.pt"
    assert replaced.stat().st_size == source.stat().st_size  # a size check cannot tell
    shutil.copy2(source, replaced)
    reason = "model.pt is not the file training wrote (its SHA-256 differs)"
    assert f"{DENSE_1}: damaged: {reason}" in status(workdir)

    planned = run_snakemake("-n", "--configfile", "grid.yaml", cwd=workdir)
    assert f"{DENSE_1}: {reason}; a real run retrains it, removing its outputs first" in planned.stderr
    assert replaced.read_bytes() == source.read_bytes()  # a dry run changes nothing

    repaired = run_snakemake("-c2", "--configfile", "grid.yaml", cwd=workdir)
    assert f"{DENSE_1}: {reason}; retraining it" in repaired.stderr and "StaleResultError" not in repaired.stderr
    payload = torch.load(replaced, map_location="cpu", weights_only=True)
    assert payload["spec"]["alpha"] == 1.0 and replaced.read_bytes() != source.read_bytes()
    again = run_snakemake("-n", "--configfile", "grid.yaml", cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr


def metrics_times(workdir) -> dict:
    return {path: path.stat().st_mtime_ns for path in (workdir / RUNS).rglob("metrics.json")}


def tables(workdir) -> dict:
    """Every table's bytes; the deployment table without its measured latencies (timings differ run to run)."""
    found = {}
    for path in (workdir / "results/oneshot_digits/tables").glob("*.csv"):
        if path.name == Path(DEPLOY_TABLE).name:
            found[path.name] = pd.read_csv(path).drop(columns=list(TIMING_COLUMNS)).to_csv(index=False).encode()
        else:
            found[path.name] = path.read_bytes()
    return found


def status_code(workdir, *configs) -> int:
    return subprocess.run([PYTHON, "-m", "bench_powerprop", "status", "configs/default.yaml", *configs], cwd=workdir,
                          capture_output=True, text=True, timeout=300).returncode


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_an_override_trains_new_cells_beside_the_old_and_the_original_config_retrains_nothing(workdir):
    """Issue 31's sequence: run, override lr, run the original again (docs/identity.md)."""
    first_tables, first_times = tables(workdir), metrics_times(workdir)
    (workdir / "lr.yaml").write_text("experiments: {oneshot_digits: {train: {lr: 0.05}}}\n")
    run_snakemake("-c2", "--configfile", "grid.yaml", "lr.yaml", cwd=workdir)
    overridden = metrics_times(workdir)
    assert len(overridden) == 6 and all(overridden[path] == time for path, time in first_times.items())  # beside, not over
    assert status_code(workdir, "grid.yaml", "lr.yaml") == 0 and status_code(workdir, "grid.yaml") == 1  # its tables: lr's

    back = run_snakemake("-c2", "--configfile", "grid.yaml", cwd=workdir)
    assert "rule train:" not in back.stdout + back.stderr and metrics_times(workdir) == overridden  # nothing retrained
    assert tables(workdir) == first_tables and status(workdir).startswith("oneshot_digits: 3 cells: 3 up to date")
    assert status_code(workdir, "grid.yaml") == 0

    (workdir / "switches.yaml").write_text(f"results_dir: {workdir / 'results'}\ncheckpoint_dir: {workdir / 'checkpoints'}\n"
                                           "experiments: {oneshot_digits: {train: {tensorboard: true, checkpoint_every: 5}}}\n")
    planned = planned_jobs(run_snakemake("-n", "--configfile", "grid.yaml", "switches.yaml", cwd=workdir))
    assert "train" not in planned and "prune_eval" not in planned  # TensorBoard on, absolute paths: no cell retrains
    assert status_code(workdir, "grid.yaml", "switches.yaml") == 0


def outputs(workdir, folder) -> dict:
    """Every table and claims file of a run's output folder: {path below it: (bytes, mtime)}."""
    root = workdir / folder
    return {str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
            for pattern in ("oneshot_digits/tables/*", "reproduction/claims*") for path in root.glob(pattern)}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_an_override_with_its_own_output_name_shares_the_unchanged_cells_and_replaces_no_report(workdir):
    """make run's path (validate --output NAME --write-config, then snakemake on that file): the override's tables and
    claims go to results/NAME/, its unchanged cells are not retrained, and the first run's outputs stay as they were."""
    first, first_times = outputs(workdir, "results"), metrics_times(workdir)
    more_seeds = ["--set", "experiments.oneshot_digits.grid[0].seed=[0,1]", "--output", "lr05"]
    written = subprocess.run([PYTHON, "-m", "bench_powerprop", "validate", "grid.yaml", *more_seeds, "--print-results-dir",
                              "--write-config", "merged.yaml"], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert written.returncode == 0 and written.stdout == "results/lr05\n", written.stderr
    run_snakemake("-c2", "--configfile", "merged.yaml", cwd=workdir)
    overridden = metrics_times(workdir)
    assert len(overridden) == 5 and all(overridden[path] == time for path, time in first_times.items())  # 2 new, 3 shared
    named = pd.read_csv(workdir / "results/lr05/oneshot_digits/tables/oneshot_runs.csv")
    assert named.groupby(["method", "alpha", "seed"]).ngroups == 5 and (workdir / "results/lr05/reproduction/claims.md").is_file()
    assert outputs(workdir, "results") == first  # the first run's tables and claims: not rewritten
    assert status_code(workdir, "grid.yaml", *more_seeds) == 0 and status_code(workdir, "grid.yaml") == 0
    named_outputs = outputs(workdir, "results/lr05")

    back = run_snakemake("-c2", "--configfile", "grid.yaml", cwd=workdir)
    assert "rule train:" not in back.stdout + back.stderr and metrics_times(workdir) == overridden
    assert outputs(workdir, "results") == first and outputs(workdir, "results/lr05") == named_outputs
    assert status(workdir).startswith("oneshot_digits: 3 cells: 3 up to date")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_swapped_run_folders_are_found_by_status_and_repaired_by_one_make_run(workdir):
    """Issue 32: ``mv alpha~1 t; mv alpha~2 alpha~1; mv t alpha~2`` with run folders named by their spec."""
    one, two, spare = workdir / DENSE_1, workdir / DENSE_2, workdir / "t"
    one.rename(spare)
    two.rename(one)
    spare.rename(two)
    listed = status(workdir)
    assert f"{DENSE_1}: damaged: metrics.json holds the results of spec" in listed and f"{DENSE_2}: damaged" in listed
    assert "3 cells: 1 up to date, 2 damaged" in listed and status_code(workdir, "grid.yaml") == 1

    make_run = ("--report", "results/report.html", "--report-after-run")  # what make run adds
    repaired = run_snakemake("-c2", "--configfile", "grid.yaml", *make_run, cwd=workdir)
    assert f"{DENSE_1}: metrics.json holds the results of spec" in repaired.stderr and "retraining it" in repaired.stderr
    assert json.loads((one / "run.json").read_text())["spec"]["alpha"] == 1.0
    assert json.loads((two / "run.json").read_text())["spec"]["alpha"] == 2.0
    assert status_code(workdir, "grid.yaml") == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_cell_whose_retrain_fails_leaves_no_rows_behind_and_a_report_says_so(workdir):
    shutil.rmtree(workdir / DENSE_1)
    run_snakemake("--configfile", "grid.yaml", "--report", "results/report.html", cwd=workdir)  # by hand, not run first
    report = (workdir / "results/report.html").read_text()
    assert "Not every cell has results." in report and "1 of the config" in report and DENSE_1 in report

    checkpoints = workdir / DENSE_1.replace("results/", "checkpoints/", 1)
    shutil.rmtree(checkpoints)
    checkpoints.write_text("a file where the cell's checkpoints go: its training fails\n")
    claims = workdir / "results/reproduction/claims.csv"
    assert claims.is_file() and (workdir / TABLE).is_file()
    failed = run_snakemake("-c2", "--configfile", "grid.yaml", cwd=workdir, check=False)
    log = (workdir / DENSE_1.replace("/runs/", "/logs/train/")).with_suffix(".log").read_text()
    assert failed.returncode != 0 and "cannot write checkpoints" in log
    assert not (workdir / TABLE).exists() and not claims.exists()  # no table or claim keeps the cell's old rows
    refused = run_snakemake("--configfile", "grid.yaml", "--report", "results/report.html", cwd=workdir, check=False)
    assert refused.returncode != 0 and "marked for report but does not exist" in refused.stderr


def copy_of_the_code(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    for name in ("bench_powerprop", "workflow", "configs", "profiles"):
        shutil.copytree(REPO / name, code / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("Snakefile", "environment.yml"):
        shutil.copy(REPO / name, code / name)
    return code


def edit(path):
    original = path.read_text()
    path.write_text(original + "\n# edited\n")
    return original


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_status_lists_cells_stale_by_code_and_its_command_retrains_exactly_those(workdir, tmp_path):
    code = copy_of_the_code(tmp_path)
    assert "3 cells: 3 up to date" in status(workdir, code=code)

    edit(code / "bench_powerprop" / "reporting" / "tables.py")  # reporting code trains nothing
    assert "3 cells: 3 up to date" in status(workdir, code=code)

    trainer = code / "bench_powerprop" / "training" / "trainer.py"
    original = edit(trainer)  # shared training code: every cell
    listed = status(workdir, code=code)
    assert all(f"{cell}: stale (code): trained by sources" in listed for cell in (DENSE_1, DENSE_2, STATIC))
    trainer.write_text(original)

    edit(code / "bench_powerprop" / "methods" / "static.py")  # one method's file: that method's cells only
    listed = status(workdir, code=code)
    assert f"{STATIC}: stale (code)" in listed and DENSE_1 not in listed and DENSE_2 not in listed
    assert "all: 3 cells: 2 up to date, 1 stale (code)" in listed
    assert status(workdir, "--stale-code-targets", code=code).split() == [f"{STATIC}/metrics.json"]

    prefix = "retrain the cells stale by code: "
    command = shlex.split(next(line for line in listed.splitlines() if line.startswith(prefix)).removeprefix(prefix))
    assert command[:3] == ["snakemake", "-c", "all"] and command[-2:] == ["--forcerun", f"{STATIC}/metrics.json"]
    untouched = (workdir / DENSE_1 / "metrics.json").stat().st_mtime_ns
    retrained = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(code / "Snakefile"), *command[1:]],
                               cwd=workdir, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(code)})
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    train_log = (workdir / "results/oneshot_digits/logs/train" / STATIC.removeprefix(f"{RUNS}/")).with_suffix(".log").read_text()
    assert "refusing checkpoint" in train_log  # the old code's checkpoint is not resumed
    assert json.loads((workdir / STATIC / "metrics.json").read_text())["resumed_from_step"] is None
    assert (workdir / DENSE_1 / "metrics.json").stat().st_mtime_ns == untouched
    assert "3 cells: 3 up to date" in status(workdir, code=code)


# -- checkpoints: only the cell's own, written by its own code, are resumed ----------------------
def train(spec, run_dir, checkpoint_dir):
    result = subprocess.run(train_command(spec, run_dir, checkpoint_dir), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result, json.loads((run_dir / "metrics.json").read_text())


def write_checkpoint(path, state):
    from bench_powerprop.io import file_sha256

    torch.save(state, path)
    path.with_name(path.name + ".sha256").write_text(file_sha256(path) + "\n")


def test_a_foreign_checkpoint_with_a_higher_step_is_refused_and_the_cell_still_resumes_its_own(tmp_path):
    own, other = digits_spec("dense", seed=0, steps=40), digits_spec("dense", seed=1, steps=40)
    train(own, tmp_path / "own", tmp_path / "own_ck")
    train(other, tmp_path / "other", tmp_path / "other_ck")
    foreign = tmp_path / "own_ck" / "step_00000999.pt"
    shutil.copy(tmp_path / "other_ck" / "step_00000040.pt", foreign)
    shutil.copy(tmp_path / "other_ck" / "step_00000040.pt.sha256", foreign.with_name(foreign.name + ".sha256"))

    result, metrics = train(own, tmp_path / "own", tmp_path / "own_ck")
    assert f"refusing checkpoint {foreign}" in result.stderr and metrics["resumed_from_step"] == 40
    assert foreign.with_name(foreign.name + ".refused").is_file() and not foreign.exists()
    _, metrics = train(own, tmp_path / "own", tmp_path / "own_ck")
    assert metrics["resumed_from_step"] == 40  # and on every later run


def test_a_checkpoint_written_by_other_code_is_not_resumed(tmp_path):
    spec = digits_spec("dense", seed=0, steps=40)
    _, first = train(spec, tmp_path / "run", tmp_path / "ck")
    checkpoints = sorted((tmp_path / "ck").glob("step_*.pt"))
    assert len(checkpoints) == 2
    for path in checkpoints:
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert state["code_hash"] == first["code_hash"]
        write_checkpoint(path, {**state, "code_hash": "another version"})

    result, metrics = train(spec, tmp_path / "run", tmp_path / "ck")
    assert metrics["resumed_from_step"] is None and result.stderr.count("refusing checkpoint") == 2
    assert metrics["test_accuracy"] == first["test_accuracy"]  # retrained from step 0, bitwise the same run
    run_info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_info["code"]["source_hash"] == metrics["code_hash"] and set(run_info["code"]) == {"commit", "dirty", "source_hash"}


def test_a_spec_hash_of_decimal_digits_only_reads_back_as_its_text(tmp_path):
    """A 16-hex-digit hash with no letter (about 1 cell in 2,000) must not read back as an integer, nor lose a leading 0."""
    from bench_powerprop.reporting.rows import oneshot_rows, read_sweep

    for spec_hash in ("3264683503262489", "0264683503262489"):
        (tmp_path / "oneshot_prune.csv").write_text(
            "keep,target_sparsity,actual_sparsity,zero_fraction,val_accuracy,test_accuracy,spec_hash\n"
            f"0.5,0.5,0.5,0.5,0.9,0.9,{spec_hash}\n")
        sweep = read_sweep(tmp_path)
        assert list(sweep["spec_hash"]) == [spec_hash]
        cell = {"experiment": "e", "method": "dense", "variant": "default", "alpha": 1.0, "sparsity": 0.0, "seed": 0,
                "run_dir": str(tmp_path)}
        metrics = {"spec_hash": spec_hash, "actual_sparsity": 0.0, "zero_fraction": 0.0, "test_accuracy": 0.9,
                   "val_accuracy": 0.9, "diverged": False, "chance_threshold": 0.2, "steps": 10}
        assert len(oneshot_rows(cell, metrics, sweep)) == 1  # not refused as another spec's sweep
