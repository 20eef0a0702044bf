"""One command line, one behaviour: every example of every --help runs, every command merges configs/default.yaml
first (as make run and snakemake do), --set goes before or after the config files, `list experiments`, `--version`."""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from bench_powerprop.cli import EXAMPLE_RUN, build_parser

from conftest import REPO

NEEDS_A_RUN = f"{EXAMPLE_RUN}/"  # examples that read a run's manifests: made after a tiny run (the report_run fixture)


def help_examples() -> list[tuple[str, str]]:
    """(command, example) of the top-level --help and of every command's --help, in the order the help lists them."""
    parser = build_parser()
    texts = [("", parser.format_help())]
    commands = next(action for action in parser._actions if action.dest == "command")  # argparse keeps subparsers here
    texts += [(name, sub.format_help()) for name, sub in commands.choices.items()]
    found = []
    for name, text in texts:
        section = text.split("\nexamples:\n", 1)[1]
        found += [(name, line.strip()) for line in section.splitlines() if line.startswith("  python -m bench_powerprop")]
    return found


EXAMPLES = help_examples()


def run_example(example: str, cwd):
    words = shlex.split(example)
    assert words[:3] == ["python", "-m", "bench_powerprop"], example
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's package, from any working directory
    return subprocess.run([sys.executable, *words[1:]], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def assert_ran(command: str, example: str, result) -> None:
    assert "Traceback" not in result.stderr, f"{example}\n{result.stderr}"
    if command == "status":  # status exits non-zero when a cell needs a run: a summary, no error, is a run example
        assert result.stdout.strip() and "bench_powerprop:" not in result.stderr, f"{example}\n{result.stderr}"
    else:
        assert result.returncode == 0, f"{example}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def fresh_clone_dir(tmp_path_factory):
    """A working directory with the repo's workflow and configs, as a fresh clone has them (no results)."""
    path = tmp_path_factory.mktemp("examples")
    for name in ("Snakefile", "workflow", "configs", "profiles"):
        (path / name).symlink_to(REPO / name)
    return path


def test_every_command_has_a_help_example():
    commands = {command for command, _ in EXAMPLES}
    assert commands >= {"", "train", "prune-eval", "deploy", "export", "report", "claims", "provenance", "validate", "needs",
                        "status", "list", "beton"}
    assert not [example for _, example in EXAMPLES if "/path/to" in example or "<" in example]


def test_every_help_example_that_needs_no_run_runs(fresh_clone_dir):
    """In the order the helps list them (prune-eval reads the model of train's example)."""
    for command, example in EXAMPLES:
        if NEEDS_A_RUN not in example:
            assert_ran(command, example, run_example(example, fresh_clone_dir))
    assert (fresh_clone_dir / "example" / "sweep.csv").stat().st_size > 0


@pytest.mark.slow
def test_every_help_example_that_reads_a_run_runs(report_run, tmp_path):
    """On a copy of a tiny run (the examples write where make run's report steps write)."""
    (tmp_path / "configs").symlink_to(REPO / "configs")
    shutil.copytree(report_run / "results", tmp_path / "results", symlinks=True)
    examples = [(command, example) for command, example in EXAMPLES if NEEDS_A_RUN in example]
    assert {command for command, _ in examples} == {"report", "deploy", "claims", "provenance"}
    for command, example in examples:
        assert_ran(command, example, run_example(example, tmp_path))
    assert (tmp_path / "example" / "claims.md").stat().st_size > 0


# -- one behaviour -------------------------------------------------------------------------------
def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "bench_powerprop", *args], capture_output=True, text=True, cwd=cwd)


def test_every_config_command_merges_the_default_first():
    """quickstart.yaml alone is not a whole config: the default's experiments, data and model come first."""
    alone = cli("validate", "configs/quickstart.yaml")
    assert alone.returncode == 0 and "config ok: 4 training cells in oneshot_digits" in alone.stdout, alone.stderr
    named = cli("validate", "configs/default.yaml", "configs/quickstart.yaml")
    assert named.stdout == alone.stdout  # naming the default first does not merge it twice
    for command in ("status", "needs", "list"):
        arguments = ["experiments"] if command == "list" else []
        result = cli(command, *arguments, "configs/quickstart.yaml")
        assert "is a required property" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert "merged over configs/default.yaml" in " ".join(cli("status", "--help").stdout.split())


def test_set_goes_before_or_after_the_config_files(tmp_path):
    lr = "experiments.oneshot_digits.train.lr=0.05"
    before = cli("validate", "--set", lr, "configs/quickstart.yaml", "--write-config", str(tmp_path / "before.yaml"))
    after = cli("validate", "configs/quickstart.yaml", "--set", lr, "--write-config", str(tmp_path / "after.yaml"))
    assert before.returncode == 0 and after.returncode == 0, before.stderr
    written = (tmp_path / "before.yaml").read_text()
    assert written == (tmp_path / "after.yaml").read_text()
    assert "lr: 0.05" in written and "results_dir: results/quickstart" in written
    bad = cli("validate", "--set", "experiments.oneshot_digits.train.lr", "configs/quickstart.yaml")
    assert bad.returncode == 1 and "expected key=value" in bad.stderr  # a word without '=' that is no file stays an override


def test_list_experiments_marks_the_active_ones_with_their_cells():
    text = cli("list", "experiments", "configs/quickstart.yaml").stdout
    assert re.search(r"^\* oneshot_digits \(oneshot, digits / mlp, 4 training cells\)$", text, re.MULTILINE), text
    assert re.search(r"^  sparse_digits \(sparse_training, digits / mlp\)$", text, re.MULTILINE), text


def test_version_names_the_package_and_the_commit():
    from bench_powerprop import __version__

    text = cli("--version").stdout
    assert text.startswith(f"bench_powerprop {__version__}")
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    assert head[:12] in text


def test_make_help_lists_the_targets_and_each_variable_with_an_example():
    text = subprocess.run(["make", "--no-print-directory", "help"], capture_output=True, text=True, cwd=REPO, check=True).stdout
    for target in ("run", "test", "test-fast", "setup", "lint", "clean", "help"):
        assert re.search(rf"^make {re.escape(target)}\s", text, re.MULTILINE), target
    for variable in ("CONFIG", "SET", "TARGET", "OUTPUT", "REPORT"):
        assert re.search(rf"^  {variable}\s.*e\.g\. make run {variable}=\S", text, re.MULTILINE), variable
