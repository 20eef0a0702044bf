"""What a user types first: --set overrides, `list`, `needs`, the quick-start config and its own results_dir."""

import os
import re
import subprocess
import sys

import pytest
import yaml

from bench_powerprop.cli import extras_needed
from bench_powerprop.config import ConfigError, grid_cells, load_configs, validate_config
from bench_powerprop.plan import Plan
from bench_powerprop.reporting.provenance import report_rows

from conftest import REPO, run_snakemake

DEFAULT = str(REPO / "configs" / "default.yaml")
QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
TINY = str(REPO / "tests" / "configs" / "tiny.yaml")
SPARSE_ONLY = "active_experiments=[sparse_digits]"  # pai_digits' reference must keep sparse_digits' train section


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "bench_powerprop", *args], capture_output=True, text=True, cwd=REPO, **kwargs)


# -- --set --------------------------------------------------------------------------------------
def test_set_values_are_typed_and_reach_the_grid():
    config = load_configs([DEFAULT], [SPARSE_ONLY, "experiments.sparse_digits.train.lr=0.05",
                                      "experiments.sparse_digits.grid[1].seed=[0,1,2]"])
    validate_config(config)
    experiment = config["experiments"]["sparse_digits"]
    assert experiment["train"]["lr"] == 0.05 and isinstance(experiment["train"]["lr"], float)
    assert experiment["grid"][1]["seed"] == [0, 1, 2]
    assert config["active_experiments"] == ["sparse_digits"]
    untouched = load_configs([DEFAULT])["experiments"]["sparse_digits"]
    assert experiment["grid"][0] == untouched["grid"][0] and experiment["train"]["steps"] == untouched["train"]["steps"]
    assert "overrides" not in config  # what was applied is recorded beside the merged config, never in it


def test_set_a_new_optional_key_and_a_mapping():
    config = load_configs([DEFAULT], ["experiments.oneshot_digits.train.tensorboard=true",
                                      "experiments.oneshot_digits.train={lr: 0.2, steps: 10}"])
    validate_config(config)
    train = config["experiments"]["oneshot_digits"]["train"]
    assert train["tensorboard"] is True and train["lr"] == 0.2 and train["steps"] == 10
    assert train["batch_size"] == 60  # a mapping merges, as a --configfile does


@pytest.mark.parametrize(("override", "message"), [
    ("experiments.sparse_digitz.train.lr=0.05", "experiments has no key 'sparse_digitz' (it has: oneshot_mnist, oneshot_digits, "),
    ("experiments.sparse_digits.grid[7].seed=[0]",
     f"experiments.sparse_digits.grid is a list of {len(load_configs([DEFAULT])['experiments']['sparse_digits']['grid'])} "
     "item(s); [7] is not one of them"),
    ("experiments.sparse_digits.train.lr.x=1", "experiments.sparse_digits.train.lr is a value (0.1), not a mapping or list"),
    ("experiments.sparse_digits.train.lr", "expected key=value"),
])
def test_set_bad_paths_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_configs([DEFAULT], [override])


def test_validate_set_through_the_cli(tmp_path):
    written = tmp_path / "merged.yaml"
    ok = cli("validate", DEFAULT, "--set", SPARSE_ONLY, "experiments.sparse_digits.grid[1].seed=[0,1,2]",
             "--write-config", str(written))
    assert ok.returncode == 0, ok.stderr
    expected = load_configs([DEFAULT], [SPARSE_ONLY, "experiments.sparse_digits.grid[1].seed=[0,1,2]"])
    assert yaml.safe_load(written.read_text()) == expected
    assert f"config ok: {len(grid_cells(expected))} training cells in sparse_digits" in ok.stdout

    for override, field in [("experiments.sparse_digits.train.lrr=0.1", "'lrr' was unexpected"),
                            ("experiments.sparse_digits.train.lr=abc", "experiments.sparse_digits.train.lr: 'abc' is not of type 'number'"),
                            ("experiments.nope.train.lr=1", "--set experiments.nope.train.lr=1: experiments has no key 'nope'")]:
        bad = cli("validate", DEFAULT, "--set", SPARSE_ONLY, override)
        assert bad.returncode == 1
        assert len(bad.stderr.strip().splitlines()) == 1 and field in bad.stderr, bad.stderr


def test_snakemake_runs_the_written_config(workdir):
    """make run's route: validate --write-config, then snakemake --configfile with only that file (targets first)."""
    written = workdir / "merged.yaml"
    assert cli("validate", DEFAULT, TINY, "--set", "experiments.oneshot_digits.grid[0].seed=[0,1,2]",
               "--write-config", str(written)).returncode == 0
    dry = run_snakemake("results/oneshot_digits/tables/oneshot_summary.md", "-n", "--configfile", str(written), cwd=workdir)
    assert re.search(r"^train\s+6$", dry.stdout, re.MULTILINE), dry.stdout  # α ∈ {1, 2} × 3 seeds


def test_the_applied_overrides_are_those_validate_wrote_beside_the_config(tmp_path):
    from bench_powerprop.config import applied_overrides

    written = tmp_path / "merged.yaml"
    overrides = [SPARSE_ONLY, "experiments.sparse_digits.train.lr=0.05", "experiments.sparse_digits.grid[1].seed=[0, 1, 2]"]
    assert cli("validate", DEFAULT, "--set-line", " ".join(f"'{text}'" for text in overrides),
               "--write-config", str(written)).returncode == 0
    assert applied_overrides([written]) == overrides
    assert applied_overrides([DEFAULT]) == []  # a file validate did not write lists none
    written.write_text(written.read_text().replace("0.05", "0.07"))  # the config edited after: its record no longer holds
    assert applied_overrides([written]) == []


def test_provenance_lists_the_overrides():
    rows = report_rows("abc", "0123", ["experiments.sparse_digits.train.lr=0.05"])
    assert ("report", "config override (--set)", "experiments.sparse_digits.train.lr=0.05") in rows


# -- results_dir ---------------------------------------------------------------------------------
def test_a_config_writing_into_the_default_results_is_warned_about():
    tiny = cli("validate", DEFAULT, TINY)
    assert tiny.returncode == 0
    assert [line for line in tiny.stderr.splitlines() if "warning" in line] == [tiny.stderr.strip()]
    assert "results/" in tiny.stderr and "results_dir" in tiny.stderr
    assert "warning" not in cli("validate", DEFAULT).stderr
    quick = cli("validate", DEFAULT, QUICKSTART, "--print-results-dir")
    assert "warning" not in quick.stderr and quick.stdout == "results/quickstart\n"


def test_an_output_name_moves_the_runs_outputs_but_not_its_cells():
    named = cli("validate", QUICKSTART, "--set", "experiments.oneshot_digits.train.lr=0.05", "--output", "lr05",
                "--print-results-dir")
    assert named.returncode == 0 and named.stdout == "results/quickstart/lr05\n" and "warning" not in named.stderr
    into_default = cli("validate", "--set", "experiments.oneshot_digits.train.lr=0.05", "--output", "lr05")
    assert into_default.returncode == 0 and "warning" not in into_default.stderr  # its own report: nothing replaced
    config = load_configs([DEFAULT, QUICKSTART], ["run_name=lr05"])
    plain, own = Plan(load_configs([DEFAULT, QUICKSTART])), Plan(config)
    cell = own.cells[0]
    assert own.run_dir(cell) == plain.run_dir(cell)  # the cells: shared by spec hash
    assert own.experiment_file("oneshot_digits", "tables/x.csv") == "results/quickstart/lr05/oneshot_digits/tables/x.csv"
    assert own.reproduction_dir == "results/quickstart/lr05/reproduction" != plain.reproduction_dir


@pytest.mark.parametrize("name, error", [
    ("../up", "run_name: '../up' is not a plain folder name"), (".hidden", "is not a plain folder name"),
    ("-x", "is not a plain folder name"), ("oneshot_digits", "run_name: 'oneshot_digits' is the name of another folder"),
    ("reproduction", "is the name of another folder")])
def test_an_output_name_is_one_plain_folder_of_its_own(name, error):
    refused = cli("validate", QUICKSTART, f"--output={name}")
    assert refused.returncode == 1 and refused.stderr.startswith("bench_powerprop: invalid config: ")
    assert len(refused.stderr.splitlines()) == 1 and error in refused.stderr


# -- needs ---------------------------------------------------------------------------------------
def test_needs_names_only_what_the_active_experiments_use():
    assert extras_needed(load_configs([DEFAULT])) == {}
    assert cli("needs", DEFAULT).stdout == ""
    vision = load_configs([DEFAULT, str(REPO / "configs" / "cifar10_resnet.yaml")])
    assert list(extras_needed(vision)) == ["vision"]
    both = load_configs([DEFAULT], ["experiments.oneshot_mnist.train.tensorboard=true"])
    assert extras_needed(both) == {"tensorboard": "experiment oneshot_mnist sets train.tensorboard: true"}
    printed = cli("needs", DEFAULT, "--set", "experiments.oneshot_mnist.train.tensorboard=true")
    assert printed.stdout == "tensorboard\n" and "oneshot_mnist" in printed.stderr


# -- list ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("registry", ["methods", "scorers", "datasets", "models"])
def test_list_into_a_closed_pipe_is_quiet(registry):
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    result = subprocess.run([sys.executable, "-m", "bench_powerprop", "list", registry], stdout=write_end,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    os.close(write_end)
    assert result.returncode == 141 and result.stderr == ""


def test_list_prints_whole_summaries_without_doubled_names():
    text = cli("list", "methods").stdout
    assert not re.search(r"^(\w+): `+\1`+", text, re.MULTILINE)
    joined = " ".join(text.split())
    assert "lottery: one level of iterative magnitude pruning with rewinding — the lottery ticket (Frankle & Carbin," in joined
    assert re.search(r"ICML 2020 \(rewinding to step k > 0\)\)\. \w+ \(default ", joined)  # the summary, then its options


@pytest.mark.slow
def test_quickstart_runs_into_its_own_results_dir(workdir):
    run_snakemake("-c", "2", "--configfile", QUICKSTART, cwd=workdir, timeout=300)
    results = workdir / "results" / "quickstart"
    assert (results / "reproduction" / "claims.md").stat().st_size > 0
    assert (results / "oneshot_digits" / "tables" / "oneshot_summary.md").stat().st_size > 0
    assert len(list(results.glob("oneshot_digits/runs/**/train_log.csv"))) == 4
    assert not (workdir / "results" / "reproduction").exists()
