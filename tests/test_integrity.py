"""integrity.py without Snakemake: which command lines run jobs, when a finished cell's files are damaged, what is
removed before a retrain, and which sources a cell's code version hashes (the workflow tests: test_staleness.py)."""

from __future__ import annotations

import errno
import hashlib
import json
import os

import pytest
import torch

from bench_powerprop import integrity
from bench_powerprop.integrity import (
    damage,
    fingerprint,
    fingerprint_mismatch,
    recorded_code_version,
    remove_outputs,
    runs_jobs,
    source_hash,
    written_files,
)
from bench_powerprop.io import WriteError

HASH = "0123456789abcdef"


@pytest.mark.parametrize(("argv", "runs"), [
    (["snakemake"], True),
    (["snakemake", "--cores", "2", "-p"], True),
    (["snakemake", "-n"], False),
    (["snakemake", "-pn"], False),
    (["snakemake", "-F"], True),
    (["snakemake", "--dry-run"], False),
    (["snakemake", "--dryrun=true"], False),
    (["snakemake", "--lint"], False),
    (["snakemake", "--report", "r.html"], False),
    (["snakemake", "--report=r.html"], False),
    (["snakemake", "--report", "r.html", "--report-after-run"], True),
    (["snakemake", "--report-stylesheet", "s.css"], True),
    (["snakemake", "--touch"], False),
    (["snakemake", "--report-stylesheet", "s.css", "-n"], False),  # a report setting, then a dry run
    (["snakemake", "--config", "n=1"], True),  # an option's value is no flag
    (["snakemake", "-j2"], True),  # not letters only: a count, not flags
    (["-n"], True),  # argv[0] is the program
])
def test_runs_jobs_reads_the_inspecting_options_of_a_command_line(argv, runs):
    assert runs_jobs(argv) is runs


def finished_cell(tmp_path, spec_hash=HASH):
    """A run folder as training leaves it: files, and metrics.json last with their fingerprints."""
    run_dir = tmp_path / f"h~{spec_hash}"
    (run_dir / "snapshots").mkdir(parents=True)
    torch.save({"spec_hash": spec_hash, "state_dict": {}}, run_dir / "model.pt")
    torch.save({"spec_hash": spec_hash, "step": 0}, run_dir / "snapshots" / "step_00000000.pt")
    (run_dir / "train_log.csv").write_text("step,loss\n0,1.0\n")
    outputs = {str(path.relative_to(run_dir)): fingerprint(path) for path in written_files(run_dir)}
    (run_dir / "metrics.json").write_text(json.dumps({"spec_hash": spec_hash, "outputs": outputs}))
    return run_dir


def test_a_fingerprint_is_size_time_and_sha256_and_a_changed_file_is_named(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abcd")
    recorded = fingerprint(path)
    assert recorded == {"size": 4, "mtime_ns": path.stat().st_mtime_ns, "sha256": hashlib.sha256(b"abcd").hexdigest()}
    assert fingerprint_mismatch(path, recorded) is None and fingerprint_mismatch(path, 4) is None
    path.write_bytes(b"abcde")
    assert fingerprint_mismatch(path, recorded) == "has 5 bytes, 4 when it was written"
    assert fingerprint_mismatch(path, 4) == "has 5 bytes, 4 when it was written"
    path.write_bytes(b"abce")
    os.utime(path, ns=(recorded["mtime_ns"] + 10**9, recorded["mtime_ns"] + 10**9))
    assert fingerprint_mismatch(path, recorded) == "is not the file training wrote (its SHA-256 differs)"
    assert fingerprint_mismatch(path, 4) is None  # a bare size (older runs) checks only the size
    os.utime(path, ns=(recorded["mtime_ns"], recorded["mtime_ns"]))
    assert fingerprint_mismatch(path, recorded) is None  # same size and time: not hashed again (documented)
    path.write_bytes(b"abcd")
    os.utime(path, ns=(recorded["mtime_ns"] + 10**9, recorded["mtime_ns"] + 10**9))
    assert fingerprint_mismatch(path, recorded) is None  # touched, same content


def test_a_finished_cell_is_trusted_until_a_file_is_changed_missing_linked_or_foreign(tmp_path):
    assert damage(tmp_path / "h~unfinished") is None
    run_dir = finished_cell(tmp_path)
    assert set(json.loads((run_dir / "metrics.json").read_text())["outputs"]) == {
        "model.pt", "train_log.csv", "snapshots/step_00000000.pt"}
    assert damage(run_dir) is None and damage(run_dir, ("train_log.csv",)) is None
    assert damage(run_dir, spec_hash="f" * 16).startswith(f"metrics.json holds the results of spec '{HASH}', not of 'ffffffffffffffff'")
    (run_dir / "train_log.csv").write_text("step,loss\n0,2.0\n")  # same size, new time
    assert damage(run_dir) == "train_log.csv is not the file training wrote (its SHA-256 differs)"
    (run_dir / "train_log.csv").unlink()
    assert damage(run_dir) == "train_log.csv is missing"
    (run_dir / "train_log.csv").symlink_to(tmp_path / "elsewhere.csv")
    assert damage(run_dir) == "train_log.csv is a symbolic link (training writes only real files)"


def test_a_symlinked_folder_and_an_empty_cell_file_are_damage(tmp_path):
    run_dir = finished_cell(tmp_path / "a")
    (tmp_path / "copy").mkdir()
    for path in (run_dir / "snapshots").iterdir():
        (tmp_path / "copy" / path.name).write_bytes(path.read_bytes())
    os.utime(tmp_path / "copy" / "step_00000000.pt", ns=((run_dir / "snapshots" / "step_00000000.pt").stat().st_mtime_ns,) * 2)
    for path in (run_dir / "snapshots").iterdir():
        path.unlink()
    (run_dir / "snapshots").rmdir()
    (run_dir / "snapshots").symlink_to(tmp_path / "copy", target_is_directory=True)
    assert damage(run_dir) == "snapshots is a symbolic link (training writes only real files)"
    other = finished_cell(tmp_path / "b")
    (other / "oneshot_prune.csv").write_text("")
    assert damage(other, ("absent.csv",)) is None
    assert damage(other, ("absent.csv", "oneshot_prune.csv")) == "oneshot_prune.csv is empty"
    (tmp_path / "real_results").mkdir()
    (tmp_path / "results").symlink_to(tmp_path / "real_results", target_is_directory=True)
    linked_root = finished_cell(tmp_path / "results")  # a link above the run folder is the user's, not damage
    assert damage(linked_root) is None


def test_a_model_file_of_another_spec_or_no_model_file_is_damage(tmp_path):
    run_dir = finished_cell(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    torch.save({"spec_hash": "f" * 16, "step": 0}, run_dir / "snapshots" / "step_00000000.pt")
    del metrics["outputs"]["snapshots/step_00000000.pt"]  # an older run that fingerprinted less
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    assert damage(run_dir) == f"snapshots/step_00000000.pt was written for spec 'ffffffffffffffff', not '{HASH}' (the folder's)"
    (run_dir / "snapshots" / "step_00000000.pt").write_bytes(b"no zip")
    assert damage(run_dir) == f"{run_dir / 'snapshots' / 'step_00000000.pt'}: not a torch model file (File is not a zip file)"
    (run_dir / "snapshots" / "step_00000000.pt").unlink()
    assert damage(run_dir) is None
    torch.save({"spec_hash": "f" * 16, "step": 0}, run_dir / "snapshots" / "step_00000005.pt")
    (run_dir / "model.pt").unlink()  # no model.pt (a run that died before it): its snapshots are still checked
    metrics["outputs"] = {}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    assert damage(run_dir) == f"snapshots/step_00000005.pt was written for spec 'ffffffffffffffff', not '{HASH}' (the folder's)"
    (run_dir / "snapshots" / "step_00000005.pt").unlink()
    unnamed = tmp_path / "plain"
    torch.save({"spec_hash": HASH, "state_dict": {}}, run_dir / "model.pt")
    assert damage(run_dir) is None
    run_dir.rename(unnamed)
    torch.save({"spec_hash": "f" * 16, "state_dict": {}}, unnamed / "model.pt")
    metrics["outputs"] = {}
    (unnamed / "metrics.json").write_text(json.dumps(metrics))
    assert damage(unnamed) is None  # a folder not named h~<hash> is checked for files only
    assert damage(unnamed, spec_hash=HASH) == f"model.pt was written for spec 'ffffffffffffffff', not '{HASH}' (the folder's)"


def test_a_metrics_json_that_is_no_json_or_no_file_is_damage(tmp_path):
    run_dir = finished_cell(tmp_path)
    (run_dir / "metrics.json").write_text('{"spec_hash": ')
    assert damage(run_dir) == "metrics.json is not valid JSON"
    (run_dir / "metrics.json").write_text("[1, 2]")
    assert damage(run_dir) == "metrics.json is not valid JSON"
    (run_dir / "metrics.json").unlink()
    (run_dir / "metrics.json").mkdir()
    assert damage(run_dir) == "metrics.json is not a regular file"


def test_written_files_and_remove_outputs_cover_the_training_outputs_and_never_follow_a_link(tmp_path):
    run_dir = finished_cell(tmp_path)
    (run_dir / "snapshots" / "deep").mkdir()
    (run_dir / "snapshots" / "deep" / "x.pt").write_bytes(b"x")
    (run_dir / "oneshot_prune.csv").write_text("a\n")
    (run_dir / "notes.txt").write_text("mine")
    assert written_files(run_dir) == [run_dir / "model.pt", run_dir / "train_log.csv",
                                      run_dir / "snapshots" / "deep" / "x.pt", run_dir / "snapshots" / "step_00000000.pt"]
    remove_outputs(run_dir, ("oneshot_prune.csv",), keep_training=True)
    assert sorted(path.name for path in run_dir.iterdir()) == ["metrics.json", "model.pt", "notes.txt", "snapshots", "train_log.csv"]
    (tmp_path / "target.csv").write_text("kept")
    (run_dir / "gradient_norms.csv").symlink_to(tmp_path / "target.csv")
    remove_outputs(run_dir, ())
    assert [path.name for path in run_dir.iterdir()] == ["notes.txt"]
    assert (tmp_path / "target.csv").read_text() == "kept"
    (tmp_path / "target_dir").mkdir()
    (tmp_path / "target_dir" / "kept.pt").write_bytes(b"x")
    (run_dir / "snapshots").symlink_to(tmp_path / "target_dir", target_is_directory=True)
    remove_outputs(run_dir, ())
    assert [path.name for path in run_dir.iterdir()] == ["notes.txt"]
    assert [path.name for path in (tmp_path / "target_dir").iterdir()] == ["kept.pt"]


def test_a_read_only_results_tree_is_one_line_naming_the_file_and_another_error_propagates(tmp_path, monkeypatch):
    run_dir = finished_cell(tmp_path)

    def failing(code):
        def unlink(self, missing_ok=False):
            raise OSError(code, os.strerror(code), str(self))
        return unlink

    monkeypatch.setattr(type(run_dir), "unlink", failing(errno.EROFS))
    with pytest.raises(WriteError, match=f"^cannot remove {run_dir / 'metrics.json'}: Read-only file system "):
        remove_outputs(run_dir, ())
    inner = run_dir / "snapshots" / "step_00000000.pt"

    def failing_rmtree(filename):
        def rmtree(*args, **kwargs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), *([str(filename)] if filename else []))
        return rmtree

    monkeypatch.setattr(integrity.shutil, "rmtree", failing_rmtree(inner))
    with pytest.raises(WriteError, match=f"^cannot remove {inner}: Read-only file system "):  # the file that failed
        remove_outputs(run_dir, ("snapshots",), keep_training=True)
    monkeypatch.setattr(integrity.shutil, "rmtree", failing_rmtree(None))
    with pytest.raises(WriteError, match=f"^cannot remove {run_dir / 'snapshots'}: Read-only file system "):  # no file named
        remove_outputs(run_dir, ("snapshots",), keep_training=True)
    monkeypatch.setattr(type(run_dir), "unlink", failing(errno.EIO))
    with pytest.raises(OSError) as error:
        remove_outputs(run_dir, ())
    assert error.value.errno == errno.EIO and not isinstance(error.value, WriteError)


def test_clear_run_dir_removes_the_outputs_cell_files_and_patterns(tmp_path):
    run_dir = finished_cell(tmp_path)
    (run_dir / "oneshot_prune.csv").write_text("a\n")
    (run_dir / "extra_1.log").write_text("")
    (run_dir / "notes.txt").write_text("mine")
    integrity.clear_run_dir(run_dir, ("extra_*.log",))
    assert [path.name for path in run_dir.iterdir()] == ["notes.txt"]


def test_a_cell_hashes_its_own_methods_file_and_the_shared_sources_only(monkeypatch):
    digests = {"trainer.py": "t", "cli.py": "c", "reporting/tables.py": "r", "kinds/x.py": "k",
               "methods/a.py": "a", "methods/b.py": "b", "methods/base.py": "m"}
    monkeypatch.setattr(integrity, "_source_digests", lambda: dict(digests))
    monkeypatch.setattr(integrity, "_method_files", lambda: {"a": "methods/a.py", "b": "methods/b.py"})

    def expected(*paths):
        return hashlib.sha256("".join(f"{path}\0{digests[path]}\n" for path in paths).encode()).hexdigest()[:16]

    assert source_hash("a") == expected("trainer.py", "methods/a.py", "methods/base.py")
    assert source_hash("b") == expected("trainer.py", "methods/b.py", "methods/base.py")
    base = source_hash("a")
    for path in ("cli.py", "reporting/tables.py", "kinds/x.py", "methods/b.py"):  # not what a cell of a trains with
        digests[path] += "edited"
        assert source_hash("a") == base, path
    for path in ("trainer.py", "methods/a.py", "methods/base.py"):
        digests[path] += "edited"
        assert source_hash("a") != base, path
        base = source_hash("a")


def test_the_real_method_files_and_the_recorded_code_version(tmp_path):
    files = integrity._method_files()
    assert files["dense"] != files["lottery"] and all(path.endswith(".py") for path in files.values())
    assert all((integrity.PACKAGE / path).is_file() for path in files.values())
    assert set(integrity._source_digests()) >= {"integrity.py", "training/trainer.py", *files.values()}
    version = integrity.code_version("dense")
    assert set(version) == {"commit", "dirty", "source_hash"} and version["source_hash"] == source_hash("dense")
    assert recorded_code_version(tmp_path) is None
    (tmp_path / "run.json").write_text(json.dumps({"code": version}))
    assert recorded_code_version(tmp_path) == version
    (tmp_path / "run.json").write_text("[]")
    assert recorded_code_version(tmp_path) is None
    (tmp_path / "run.json").write_text("{")
    assert recorded_code_version(tmp_path) is None


def test_the_sources_are_hashed_once_per_process_however_many_cells_ask(monkeypatch):
    """One snapshot of the package for every cell a workflow plans (and no rehashing per cell)."""
    hashed = []
    real = integrity.file_sha256
    monkeypatch.setattr(integrity, "file_sha256", lambda path: hashed.append(path) or real(path))
    integrity._source_digests.cache_clear()
    try:
        first = [source_hash(method) for method in ("dense", "lottery", "dense")]
        assert len(hashed) == len(list(integrity.PACKAGE.rglob("*.py")))
        assert first[0] == first[2] != first[1]
    finally:
        integrity._source_digests.cache_clear()
