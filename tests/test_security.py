"""No file or config the harness reads can run code, and bad configs fail fast with one line.

Every test goes through a real entry point (``python -m bench_powerprop ...`` or ``snakemake``) and
checks that a planted command never ran (its marker file does not exist).
"""

import json
import pickle
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, run_snakemake
from helpers import digits_config, digits_spec, run_folder, train_command

PYTHON_M = [sys.executable, "-m", "bench_powerprop"]
DEFAULT = str(REPO / "configs" / "default.yaml")


class Planted:
    """Unpickling this runs ``touch <marker>`` — what a hostile model.pt, checkpoint or CIFAR batch would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def cli(*args, check_rc=None, **kwargs):
    result = subprocess.run([*PYTHON_M, *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)
    if check_rc is not None:
        assert result.returncode == check_rc, result.stdout + result.stderr
    return result


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("bench_powerprop:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# -- the shell never sees config values as syntax ---------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_shell_syntax_in_output_directories_stays_a_directory_name(workdir):
    results = "r s$(touch PWNED1);touch PWNED2;`touch PWNED3`"
    checkpoints = "c k$(touch PWNED4);touch PWNED5;"
    config = digits_config("dense", steps=20, log_every=10, eval_every=20, checkpoint_every=10)
    config.update(results_dir=results, checkpoint_dir=checkpoints)
    config["experiments"]["oneshot_digits"]["prune"] = {"keep_levels": [0.2, 1.0]}
    path = workdir / "hostile.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    assert cli("validate", path, cwd=workdir).returncode == 0
    run_snakemake("-c2", "--configfile", path, cwd=workdir)
    assert not list(workdir.rglob("PWNED*"))
    run = run_folder(workdir / results / "oneshot_digits" / "runs" / "method~dense/variant~default/alpha~2/sparsity~0/seed~0")
    assert json.loads((run / "metrics.json").read_text())["steps"] == 20
    assert (workdir / results / "oneshot_digits" / "tables" / "oneshot_runs.csv").is_file()
    assert list((workdir / checkpoints).rglob("step_*.pt"))


# -- validation --------------------------------------------------------------------------------
BAD_DIRECTORIES = {
    "empty results_dir": ({"results_dir": ""}, "results_dir: empty"),
    "newline": ({"results_dir": "out\nx"}, "results_dir: 'out\\nx' holds '\\n'"),
    "NUL": ({"checkpoint_dir": "ck\x00x"}, "checkpoint_dir: 'ck\\x00x' holds '\\x00'"),
    "braces": ({"results_dir": "out{experiment}"}, "holds '{'"),
    "same directory": ({"results_dir": "out", "checkpoint_dir": "out/"}, "checkpoint_dir: 'out/' overlaps results_dir 'out'"),
    "checkpoints inside results": ({"results_dir": "out", "checkpoint_dir": "out/ck"}, "overlaps results_dir"),
    "results inside checkpoints": ({"results_dir": "ck/out", "checkpoint_dir": "ck"}, "overlaps results_dir"),
}


@pytest.mark.parametrize("case", sorted(BAD_DIRECTORIES))
def test_validate_refuses_output_directories_that_cannot_work(case, tmp_path):
    values, message = BAD_DIRECTORIES[case]
    path = tmp_path / "dirs.yaml"
    path.write_text(json.dumps(values))
    line = one_line_error(cli("validate", DEFAULT, path, check_rc=1))
    assert message in line


def test_a_directory_name_with_spaces_is_valid(tmp_path):
    path = tmp_path / "spaces.yaml"
    path.write_text(json.dumps({"results_dir": "my results", "checkpoint_dir": "my checkpoints"}))
    assert cli("validate", DEFAULT, path, check_rc=0).stdout.startswith("config ok")


def cpu_seconds_cap(seconds: int):
    def cap():
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))

    return cap


def alias_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[level]
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def huge_config() -> str:
    return "experiments:\n" + "".join(f"  e{index}: {{kind: oneshot, description: {'x' * 60}}}\n" for index in range(80_000))


BAD_FILES = {
    "alias bomb": (alias_bomb, "more than 200000 values once its aliases are expanded"),
    "many aliases": (lambda: "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n", "more than 100 aliases"),
    "huge file": (huge_config, "larger than 4 MB"),
    "duplicate key": (lambda: "experiments:\n  oneshot_digits:\n    train:\n      steps: 20\n      steps: 5000000\n",
                      "duplicate key 'steps' (first at line 4)"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_hostile_yaml_fails_fast_with_one_line(case, tmp_path):
    make, message = BAD_FILES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(make())
    assert len(alias_bomb()) < 600
    # 9⁹ values expanded would cost minutes of CPU and gigabytes: a loader that expands them is killed (SIGXCPU)
    # at this CPU-time cap (CPU seconds of the process, not wall-clock: a loaded machine does not change them)
    line = one_line_error(cli("validate", DEFAULT, path, check_rc=1, preexec_fn=cpu_seconds_cap(60)))
    assert message in line and str(path) in line


def test_a_device_that_never_ends_is_not_read_to_its_end():
    line = one_line_error(cli("validate", DEFAULT, "/dev/zero", check_rc=1))
    assert "/dev/zero is not a regular file" in line


def test_a_dense_cell_with_a_sparsity_target_is_refused(tmp_path):
    path = tmp_path / "dense.yaml"
    path.write_text("experiments:\n  oneshot_digits:\n    grid:\n      - {method: [dense], alpha: [2], sparsity: [0.5], seed: [0]}\n")
    line = one_line_error(cli("validate", DEFAULT, path, check_rc=1))
    assert "experiments.oneshot_digits.grid[0].sparsity: method 'dense' trains without a sparsity target" in line


def test_an_unused_variant_is_still_validated(tmp_path):
    path = tmp_path / "variant.yaml"
    path.write_text("experiments:\n  sparse_digits:\n    variants: {rigl: {unused: {distribution: banana}}}\n")
    line = one_line_error(cli("validate", DEFAULT, path, check_rc=1))
    assert "experiments.sparse_digits.variants.rigl.unused.distribution: must be one of" in line and "'banana'" in line


# -- files that would run code are refused -----------------------------------------------------
def plant(path: Path, marker: Path, **payload) -> Path:
    torch.save({"spec_hash": "0" * 16, "state_dict": Planted(marker), **payload}, path)
    return path


def test_prune_eval_refuses_a_model_file_that_would_run_code(tmp_path):
    marker = tmp_path / "ran"
    model = plant(tmp_path / "model.pt", marker, spec={})
    result = cli("prune-eval", "--model", model, "--prune", '{"keep_levels": [0.5]}', "--out", tmp_path / "out.csv", check_rc=2)
    assert "not a model file the harness wrote, refused" in one_line_error(result)
    assert not marker.exists() and not (tmp_path / "out.csv").exists()


def test_a_resume_refuses_a_checkpoint_that_would_run_code(tmp_path):
    from bench_powerprop.io import file_sha256

    marker, checkpoints = tmp_path / "ran", tmp_path / "ck"
    checkpoints.mkdir()
    planted = plant(checkpoints / "step_00000010.pt", marker)
    (checkpoints / "step_00000010.pt.sha256").write_text(file_sha256(planted) + "\n")  # the sidecar is no defence
    spec = digits_spec("dense", steps=20)
    result = subprocess.run(train_command(spec, tmp_path / "run", checkpoints), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "does not load as data" in result.stderr
    assert not marker.exists()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["resumed_from_step"] is None


def test_a_lineage_child_refuses_a_parent_file_that_would_run_code(tmp_path):
    marker = tmp_path / "ran"
    parent = plant(tmp_path / "parent.pt", marker, alpha=2.0)
    spec = {**digits_spec("dense", steps=20), "lineage": {"init_from": {"path": str(parent), "step": "final",
                                                                        "parent_spec_hash": "0" * 16}}}
    result = subprocess.run(train_command(spec, tmp_path / "run", tmp_path / "ck"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert f"{parent}: not a model file the harness wrote, refused" in one_line_error(result)
    assert not marker.exists() and not (tmp_path / "run" / "metrics.json").exists()


def test_a_cifar_batch_that_would_run_code_is_refused(tmp_path):
    marker, cifar = tmp_path / "ran", tmp_path / "cifar-10-batches-py"
    cifar.mkdir()
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        with open(cifar / name, "wb") as handle:
            pickle.dump({b"data": Planted(marker), b"labels": [0]}, handle, protocol=2)
    result = cli("beton", "write-cifar10", "--src", cifar, "--split", "train", "--out", tmp_path / "train.beton")
    assert result.returncode != 0
    assert "data_batch_1: refused: the pickle names" in result.stderr and "call, not a numpy array" in result.stderr
    assert not marker.exists() and not (tmp_path / "train.beton").exists()


# -- inherited files are the ones the spec names -----------------------------------------------
def test_a_child_trained_from_a_swapped_parent_fails_naming_both_specs(tmp_path):
    parent_spec, other_spec = digits_spec("dense", seed=0, steps=20), digits_spec("dense", seed=1, steps=20)
    for name, spec in (("parent", parent_spec), ("other", other_spec)):
        subprocess.run(train_command(spec, tmp_path / name, tmp_path / f"{name}_ck"), check=True, capture_output=True, timeout=300)
    parent_model, other_model = tmp_path / "parent" / "model.pt", tmp_path / "other" / "model.pt"
    assert parent_model.stat().st_size == other_model.stat().st_size
    parent_model.write_bytes(other_model.read_bytes())  # the same size: a size check cannot tell
    from bench_powerprop.identity import cell_hash as spec_hash

    child = {**digits_spec("dense", seed=2, steps=20),
             "lineage": {"init_from": {"path": str(parent_model), "step": "final", "parent_spec_hash": spec_hash(parent_spec)}}}
    result = subprocess.run(train_command(child, tmp_path / "child", tmp_path / "child_ck"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"was written for spec '{spec_hash(other_spec)}', but this cell inherits from spec '{spec_hash(parent_spec)}'" in line
    assert not (tmp_path / "child" / "metrics.json").exists()


# -- a job that runs out of memory says so ----------------------------------------------------
def test_training_under_a_memory_limit_says_what_happened_and_what_it_was_given(tmp_path):
    def limit_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (400 * 2**20, 400 * 2**20))

    command = [*train_command(digits_spec("dense", steps=20), tmp_path / "run", tmp_path / "ck"), "--mem-mb", "400"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=limit_address_space)
    assert result.returncode == 3
    line = one_line_error(result)
    assert "train: out of memory" in line and "it was given 400 MB (resources.mem_mb)" in line
