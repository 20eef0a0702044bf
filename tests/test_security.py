"""No file or config the harness reads can run code, and bad configs fail fast with one line.

Every test goes through a real entry point (``python -m bench_powerprop ...`` or ``snakemake``) and
checks that a planted command never ran (its marker file does not exist).
"""

import json
import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench_powerprop.config import MAX_DEPTH, MAX_VALUES

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
    "alias bomb": (alias_bomb, f"more than {MAX_VALUES} values once its aliases are expanded"),
    "many aliases": (lambda: "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n", "more than 100 aliases"),
    "huge file": (huge_config, "larger than 1 MB"),
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


#: Files that would take PyYAML's recursive composer into a RecursionError (3,000 lines of traceback) or take
#: it ~40 s to build: each refused while it is parsed, at the line and column where the limit was passed.
DEEP_OR_LONG = {
    "20,000 nested lists": (lambda: "a: " + "[" * 20_000 + "]" * 20_000 + "\n", f"nested more than {MAX_DEPTH} levels",
                            (1, 4 + MAX_DEPTH)),
    "5,000 nested mappings": (lambda: "a: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n", f"nested more than {MAX_DEPTH} levels",
                              (1, 4 + 4 * MAX_DEPTH)),
    "a list of 450,000 values": (lambda: "a: [" + ",".join(["1"] * 450_000) + "]\n", f"more than {MAX_VALUES} values",
                                 (1, 5 + 2 * (MAX_VALUES - 1))),
}


@pytest.mark.parametrize("case", sorted(DEEP_OR_LONG))
def test_deep_or_long_yaml_is_refused_while_it_is_parsed(case, tmp_path):
    make, message, (line_number, last_column) = DEEP_OR_LONG[case]
    path = tmp_path / "bad.yaml"
    text = make()
    path.write_text(text)
    line = one_line_error(cli("validate", DEFAULT, path, check_rc=1))
    found = re.search(rf"{re.escape(str(path))}:(\d+):(\d+): invalid YAML: {message}", line)
    assert found and int(found[1]) == line_number, line
    assert int(found[2]) <= last_column < len(text) // 10  # parsing stopped where the limit was passed, not at the end


def test_a_device_that_never_ends_is_not_read_to_its_end():
    line = one_line_error(cli("validate", DEFAULT, "/dev/zero", check_rc=1))
    assert "/dev/zero is not a regular file" in line


def test_a_fifo_config_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    assert f"config file {fifo} is not a regular file" in one_line_error(cli("validate", DEFAULT, fifo, check_rc=1))


BAD_VALUES = {
    "results_dir like an option": ({"results_dir": "-rdash"}, "results_dir: '-rdash' starts with '-', which a command reads as an option"),
    "checkpoint_dir like an option": ({"checkpoint_dir": "--ckdash"}, "checkpoint_dir: '--ckdash' starts with '-'"),
    "published_results like an option": ({"published_results": "-p"}, "published_results: '-p' starts with '-'"),
    "a script end in a description": ({"experiments": {"oneshot_digits": {"description": "x</script><script>alert(1)"}}},
                                       "experiments.oneshot_digits.description: 'x</script><script>alert(1)' holds '</'"),
    "a script end in a path": ({"results_dir": "out</SCRIPT>"}, "results_dir: 'out</SCRIPT>' holds '</'"),
    "a comment start in a path": ({"checkpoint_dir": "ck<!--"}, "checkpoint_dir: 'ck<!--' holds '<!--'"),
    "a forged list of overrides": ({"overrides": ["experiments.x.train.lr=0.1"]}, "'overrides' was unexpected"),
    "a model of 10^16 weights": ({"experiments": {"oneshot_digits": {"model": {"hidden": [10**8, 10**8]}}}},
                                 "experiments.oneshot_digits.model: at least 1e+16 weights"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_validate_refuses_values_that_fail_late_or_forge_a_page(case, tmp_path):
    values, message = BAD_VALUES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(values))
    assert message in one_line_error(cli("validate", DEFAULT, path, check_rc=1))


def test_a_results_dir_that_is_a_symlink_to_the_checkpoints_overlaps_them(tmp_path):
    (tmp_path / "ck").mkdir()
    (tmp_path / "results").symlink_to(tmp_path / "ck")
    path = tmp_path / "dirs.yaml"
    path.write_text(json.dumps({"results_dir": str(tmp_path / "results"), "checkpoint_dir": str(tmp_path / "ck")}))
    line = one_line_error(cli("validate", DEFAULT, path, check_rc=1))
    assert f"overlaps results_dir '{tmp_path / 'results'}' ({tmp_path / 'ck'} and {tmp_path / 'ck'} once symlinks" in line


def test_overrides_with_odd_keys_or_quotes_are_one_line():
    digit = one_line_error(cli("validate", DEFAULT, "--set", "experiments.oneshot_digits.grid.²=1", check_rc=1))
    assert "experiments.oneshot_digits.grid is a list of 1 item(s); [²] is not one of them" in digit
    forged = one_line_error(cli("validate", DEFAULT, "--set", "overrides=[a]", check_rc=1))
    assert "'overrides' was unexpected" in forged
    quote = one_line_error(cli("validate", DEFAULT, "--set-line", "a.b='[0, 1]", check_rc=1))
    assert "No closing quotation" in quote


def test_a_yte_template_is_refused_by_validate(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "yte.yaml"
    path.write_text(f'__use_yte__: true\nresults_dir: ?__import__("os").system("touch {marker}") and "x"\n')
    assert f"{path}: __use_yte__: YTE templates" in one_line_error(cli("validate", DEFAULT, path, check_rc=1))
    assert not marker.exists()


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


# -- make run: SET, TARGET, CONFIG and REPORT are data ------------------------------------------
def make_checkout(tmp_path) -> Path:
    """The repository's Makefile, Snakefile and package in a scratch folder (make run writes .snakemake/ there)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("Makefile", "Snakefile", "configs", "workflow", "bench_powerprop", "pyproject.toml"):
        (checkout / name).symlink_to(REPO / name)
    return checkout


def tiny_config(folder: Path) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(json.dumps({"results_dir": str(folder / "out"), "checkpoint_dir": str(folder / "ck"),
                                "active_experiments": ["oneshot_digits"]}))
    return path


def make_run(checkout: Path, timeout=300, **variables) -> subprocess.CompletedProcess:
    """``make run NAME=value ...`` on the environment running the tests (-o: never reinstall it); by default on a tiny
    config and a target no rule makes, so that a payload that did reach a shell never starts a real run."""
    variables = {"CONFIG": tiny_config(checkout), "TARGET": "no_such_target", **variables}
    venv = Path(sys.executable).parent.parent
    command = ["make", "--no-print-directory", "-C", str(checkout), "run", f"VENV={venv}", "-o", f"{venv}/.installed-base",
               *(f"{name}={value}" for name, value in variables.items())]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)})


def shell_payloads(marker: Path) -> dict[str, dict]:
    lr = "experiments.oneshot_digits.train.lr"
    return {
        "SET $(...)": {"SET": f"{lr}=$$(touch {marker})0.1"},
        "SET $(...) single $": {"SET": f"{lr}=$(touch {marker})0.1"},
        "SET make function": {"SET": f"$(shell touch {marker})"},
        "SET backticks": {"SET": f"{lr}=`touch {marker}`0.1"},
        "SET ;": {"SET": f"{lr}=0.1;touch${{IFS}}{marker}"},
        "SET option": {"SET": "--write-config=Makefile"},
        "CONFIG ;": {"CONFIG": f"configs/quickstart.yaml;touch {marker}"},
        "CONFIG option": {"CONFIG": "--write-config Makefile"},
        "OUTPUT $(...)": {"OUTPUT": f"x$(touch {marker})"},
        "OUTPUT option": {"OUTPUT": "--write-config=Makefile"},
    }


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
@pytest.mark.parametrize("case", sorted(shell_payloads(Path("m"))))
def test_make_run_never_evaluates_set_config_or_report(case, tmp_path):
    checkout, marker = make_checkout(tmp_path), tmp_path / "marker"
    result = make_run(checkout, **shell_payloads(marker)[case])
    assert result.returncode != 0
    assert not marker.exists()
    assert len([line for line in result.stderr.splitlines() if line.startswith("bench_powerprop:")]) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not list((checkout / ".snakemake" / "bench_powerprop").iterdir())  # the merged config is removed


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_run_passes_targets_and_the_report_as_words_never_as_commands(tmp_path):
    checkout, marker = make_checkout(tmp_path), tmp_path / "marker"
    result = make_run(checkout, TARGET=f"no_such_target;touch${{IFS}}{marker} `touch {marker}` $(touch {marker})",
                      REPORT=f"$(touch {marker})")
    log = (checkout / "out" / "snakemake.log").read_text()  # Snakemake's whole log (make run shows one progress line)
    assert result.returncode != 0 and "MissingRuleException" in log  # the words were targets, none a command
    assert not marker.exists() and not (checkout / "out" / "oneshot_digits").exists()
    assert not list((checkout / ".snakemake" / "bench_powerprop").iterdir())


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_run_output_names_the_runs_own_folder(tmp_path):
    """OUTPUT=NAME reaches the merged config as run_name: Snakemake's log (and every output) in <results_dir>/NAME/."""
    checkout = make_checkout(tmp_path)
    result = make_run(checkout, OUTPUT="named")
    assert result.returncode != 0 and "MissingRuleException" in (checkout / "out" / "named" / "snakemake.log").read_text()
    assert not (checkout / "out" / "snakemake.log").exists()


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_run_validates_a_yte_config_before_snakemake_loads_it(tmp_path):
    """Snakemake's own loader evaluates YTE (docs/security.md); make run hands it only the file validate wrote."""
    checkout, marker = make_checkout(tmp_path), tmp_path / "marker"
    yte = tmp_path / "yte.yaml"
    yte.write_text(f'__use_yte__: true\nresults_dir: ?__import__("os").system("touch {marker}") and "x"\n')
    result = make_run(checkout, CONFIG=yte)
    assert result.returncode != 0 and "__use_yte__: YTE templates" in result.stderr
    assert not marker.exists()


# -- the by-hand path: snakemake --configfile ----------------------------------------------------
BY_HAND = {
    "YTE": ('__use_yte__: true\nresults_dir: plain\n', "__use_yte__: YTE templates (Python expressions in values) are refused"),
    "unknown key": ("active_experiments: [oneshot_digits]\nbogus: 1\n", "'bogus' was unexpected"),
    "duplicate key": ("results_dir: a\nresults_dir: b\n", "duplicate key 'results_dir'"),
    "many aliases": ("a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n", "more than 100 aliases"),
}


@pytest.mark.parametrize("case", sorted(BY_HAND))
def test_snakemake_by_hand_refuses_what_validate_refuses_before_planning(case, workdir):
    text, message = BY_HAND[case]
    path = workdir / "by_hand.yaml"
    path.write_text(text)
    result = run_snakemake("-n", "--configfile", str(path), cwd=workdir, check=False, timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("bench_powerprop:")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert "Building DAG" not in result.stdout + result.stderr


# -- failures outside the harness: one line ------------------------------------------------------
def test_a_missing_extra_is_named_with_the_command_that_installs_it(tmp_path):
    """`beton write-cifar10` where FFCV is not installed (an import of it fails as it does in a base environment)."""
    code = ("import sys; sys.modules['ffcv'] = None; from bench_powerprop.cli import main; "
            f"sys.exit(main(['beton', 'write-cifar10', '--src', '{tmp_path}', '--split', 'train', '--out', '{tmp_path}/x.beton']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 5
    line = one_line_error(result)
    assert "beton: needs the vision extra (module 'ffcv' is not installed); install it with `make setup-vision`" in line


def test_a_model_too_large_to_allocate_is_the_one_line_out_of_memory_message(tmp_path):
    spec = digits_spec("dense", steps=20)
    spec["model"]["hidden"] = [2**31]  # under validate's bound, 512 GiB to allocate
    result = subprocess.run(train_command(spec, tmp_path / "run", tmp_path / "ck"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 3
    assert "train: out of memory (RuntimeError: " in one_line_error(result)


def in_small_filesystem(command: list[str], folder: Path, kilobytes: int, read_only: bool = False):
    """``command`` with ``folder`` a tmpfs of ``kilobytes`` (or read-only), in a user and mount namespace of its own."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare cannot create a user and mount namespace here")
    folder.mkdir(parents=True, exist_ok=True)
    mount = (f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder}" if read_only
             else f"mount -t tmpfs -o size={kilobytes}k tmpfs {folder}")
    script = f'{mount} && exec "$@"'
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *map(str, command)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("full", ["run-dir", "checkpoint-dir"])
def test_a_full_disk_is_one_line_naming_the_file_and_the_free_space(full, tmp_path):
    spec = digits_spec("dense", steps=20, checkpoint_every=10)
    small = tmp_path / "small"
    run_dir, checkpoint_dir = (small / "run", tmp_path / "ck") if full == "run-dir" else (tmp_path / "run", small / "ck")
    result = in_small_filesystem(train_command(spec, run_dir, checkpoint_dir), small, kilobytes=120)
    assert result.returncode == 4, result.stderr[-2000:]
    line = one_line_error(result)
    assert re.search(rf"train: cannot write {re.escape(str(small))}/\S+: No space left on device \(\d+\.\d MB free", line), line
    assert ("model.pt" in line) if full == "run-dir" else ("step_" in line)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_two_make_runs_in_one_checkout_each_train_with_their_own_overrides(tmp_path):
    """Each run has its own merged config (the first used to train with the second's lr and list it as its own)."""
    checkout = make_checkout(tmp_path)
    venv = Path(sys.executable).parent.parent
    axes = "oneshot_digits/runs/method~dense/variant~default/alpha~2/sparsity~0/seed~0"
    runs = {}
    for name, lr in (("a", 0.05), ("b", 0.07)):
        results = tmp_path / f"results_{name}"
        overrides = (f"results_dir={results} checkpoint_dir={tmp_path / f'ck_{name}'} experiments.oneshot_digits.train.lr={lr} "
                     "experiments.oneshot_digits.train.steps=20 experiments.oneshot_digits.train.log_every=10 "
                     "'experiments.oneshot_digits.grid=[{method: [dense], "
                     "alpha: [2], sparsity: [0], seed: [0]}]'")
        command = ["make", "--no-print-directory", "-C", str(checkout), "run", f"VENV={venv}", "-o", f"{venv}/.installed-base",
                   f"CONFIG={tiny_config(tmp_path)}", f"SET={overrides}"]
        runs[name] = (lr, results, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                                    env={**os.environ, "PYTHONPATH": str(REPO)}))
    for lr, results, process in runs.values():
        output = process.communicate(timeout=500)[0]
        assert process.returncode == 0, output[-3000:]
        assert json.loads((run_folder(results / axes) / "run.json").read_text())["spec"]["train"]["lr"] == lr
        provenance = (results / "reproduction" / "provenance.md").read_text()
        assert re.search(rf"config override \(--set\) +\| experiments\.oneshot_digits\.train\.lr={lr} +\|", provenance)
    assert not list((checkout / ".snakemake" / "bench_powerprop").iterdir())
