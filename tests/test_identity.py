"""A cell's identity (docs/identity.md): what its spec hash leaves out, the hashing rule for options, and what
a run folder's files say about themselves."""

import dataclasses
import io
import json
import os
import pickle
import zipfile

import pytest
import torch

from bench_powerprop import identity, integrity
from bench_powerprop.config import load_configs, merge_configs
from bench_powerprop.identity import ModelFileError, cell_hash, recorded_spec_hash
from bench_powerprop.integrity import damage, runs_jobs
from bench_powerprop.options import NO_NEUTRAL, number, option
from bench_powerprop.pipelines import tiny_report_config
from bench_powerprop.plan import Plan
from bench_powerprop.training import options as train_options_module
from bench_powerprop.training.options import TrainOptions

from conftest import REPO
from helpers import digits_spec


def tiny_config(**top_level) -> dict:
    """Every kind's tiny experiment (lineage: lottery; a permuted base: continual) over the default config."""
    config = merge_configs(load_configs([REPO / "configs" / "default.yaml"]), tiny_report_config())
    config.update(top_level)
    return config


def hashes(config) -> dict:
    plan = Plan(config)
    return {cell: plan.spec_hash(cell) for cell in plan.cells}


def with_new_train_option(monkeypatch, default, neutral):
    """TrainOptions as if a release added ``new_option`` (declared with its neutral value)."""

    @dataclasses.dataclass(frozen=True)
    class Extended(TrainOptions):
        new_option: float = option(default, "an option added later", check=number(), neutral=neutral)

    monkeypatch.setattr(train_options_module, "TrainOptions", Extended)


def test_an_option_added_at_its_neutral_value_changes_no_hash(monkeypatch):
    before = hashes(tiny_config())
    with_new_train_option(monkeypatch, default=0.0, neutral=0.0)
    after = hashes(tiny_config())
    assert Plan(tiny_config()).spec(next(iter(after)))["train"]["new_option"] == 0.0  # in the spec, not in the hash
    assert after == before


def test_changing_a_default_changes_exactly_the_cells_it_affects(monkeypatch):
    config = tiny_config()
    config["experiments"]["oneshot_digits"]["train"]["new_option"] = 0.0  # this experiment sets the old value itself
    with_new_train_option(monkeypatch, default=0.0, neutral=0.0)
    before = hashes(config)
    with_new_train_option(monkeypatch, default=0.5, neutral=0.0)  # a later release changes the default
    after = hashes(config)
    changed = {cell.experiment for cell in before if before[cell] != after[cell]}
    unchanged = {cell.experiment for cell in before if before[cell] == after[cell]}
    assert unchanged == {"oneshot_digits"} and changed == set(config["active_experiments"]) - {"oneshot_digits"}


def test_an_option_declared_without_a_neutral_value_is_always_hashed(monkeypatch):
    before = hashes(tiny_config())
    with_new_train_option(monkeypatch, default=0.0, neutral=NO_NEUTRAL)
    assert all(before[cell] != hashed for cell, hashed in hashes(tiny_config()).items())


def test_logging_switches_and_paths_are_not_part_of_a_cell(tmp_path):
    config = tiny_config()
    plan = Plan(config)
    relative = {cell: plan.cell_path(cell) for cell in plan.cells}
    for experiment in config["experiments"].values():
        experiment["train"].update(tensorboard=True, checkpoint_every=7)
    absolute = Plan({**config, "results_dir": str(tmp_path / "results"), "checkpoint_dir": str(tmp_path / "ck")})
    lottery = next(cell for cell in absolute.cells if "lineage" in absolute.spec(cell))
    assert absolute.spec(lottery)["lineage"] != plan.spec(lottery)["lineage"]  # the parent's path differs ...
    assert {cell: absolute.cell_path(cell) for cell in absolute.cells} == relative  # ... and no cell's identity
    assert absolute.run_dir(lottery) == f"{tmp_path}/results/{plan.run_dir(lottery).removeprefix('results/')}"


def test_the_planner_and_the_trainer_hash_a_spec_alike():
    plan = Plan(tiny_config())
    assert all(cell_hash(json.loads(json.dumps(plan.spec(cell)))) == plan.spec_hash(cell) for cell in plan.cells)


def test_a_changed_parent_changes_its_childrens_hashes():
    config = tiny_config()
    before = hashes(config)
    config["experiments"]["lottery_digits"]["grid"][0]["snapshot_steps"] = [0, 10]  # the level-0 parents only
    after = hashes(config)
    lottery = [cell for cell in before if cell.experiment == "lottery_digits"]
    assert all(before[cell] != after[cell] for cell in lottery)  # level 1 and its controls inherit from level 0


# -- the spec hash a model file records ------------------------------------------------------------
def test_the_recorded_spec_hash_is_the_top_level_one(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"spec": {"spec_hash": "nested", "lineage": {"x": {"parent_spec_hash": "p"}}}, "layers": (1, 2, 3),
                "spec_hash": "0123456789abcdef", "state_dict": {"w": torch.zeros(3)}}, path)
    assert recorded_spec_hash(path) == "0123456789abcdef"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, path)
    assert recorded_spec_hash(path) is None
    path.write_text("not a model")
    with pytest.raises(ModelFileError, match=r"model\.pt: not a torch model file"):
        recorded_spec_hash(path)


class RunsCode:
    def __reduce__(self):
        return os.system, ("touch PWNED",)


def test_reading_the_recorded_hash_runs_nothing_in_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"spec_hash": RunsCode()}, protocol=2))
    assert recorded_spec_hash(path) is None and not (tmp_path / "PWNED").exists()


# -- make run repairs --------------------------------------------------------------------------------
def test_make_runs_report_after_run_is_a_real_run():
    make_run = ["snakemake", "-c", "all", "--configfile", "c.yaml", "--report", "r/report.html", "--report-after-run",
                "--report-stylesheet", "workflow/report/style.css"]
    assert runs_jobs(make_run)
    assert not runs_jobs(["snakemake", "--report", "r/report.html"]) and not runs_jobs(["snakemake", "-n", "--report-after-run"])
    assert not runs_jobs(["snakemake", "--report=r.html", "--report-stylesheet", "s.css"])


# -- what a run folder holds -------------------------------------------------------------------------
def trained_folder(tmp_path, leftovers=()):
    from bench_powerprop.training.trainer import train_cell

    spec = digits_spec("dense", steps=20, log_every=10, eval_every=20, checkpoint_every=10)
    run_dir = tmp_path / "runs" / identity.hash_segment(cell_hash(spec))
    run_dir.mkdir(parents=True)
    for name in leftovers:
        (run_dir / name).write_text("from an earlier spec\n")
    train_cell(spec, run_dir, tmp_path / "ck", progress=False)
    return spec, run_dir


def test_a_folder_holds_no_file_from_an_earlier_training_and_fingerprints_only_what_training_wrote(tmp_path):
    _, run_dir = trained_folder(tmp_path, leftovers=("oneshot_prune.csv", "notes.txt"))
    outputs = json.loads((run_dir / "metrics.json").read_text())["outputs"]
    assert not (run_dir / "oneshot_prune.csv").exists()  # the previous sweep is gone, so never fingerprinted
    assert sorted(outputs) == sorted(str(path.relative_to(run_dir)) for path in integrity.written_files(run_dir))
    assert "notes.txt" not in outputs and damage(run_dir) is None


def test_files_of_another_spec_in_a_folder_are_damage(tmp_path):
    spec, run_dir = trained_folder(tmp_path)
    other = tmp_path / "runs" / "h~00000000000000ff"
    run_dir.rename(other)  # a folder moved under another cell's name
    assert "metrics.json holds the results of spec" in damage(other) and "'00000000000000ff' (the folder's)" in damage(other)
    other.rename(run_dir)

    forged = io.BytesIO()  # another cell's model, its fingerprint written into metrics.json as well
    torch.save({"spec_hash": "ffffffffffffffff", "spec": spec, "state_dict": {}}, forged)
    (run_dir / "model.pt").write_bytes(forged.getvalue())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["outputs"]["model.pt"] = integrity.fingerprint(run_dir / "model.pt")
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    assert damage(run_dir) == f"model.pt was written for spec 'ffffffffffffffff', not '{cell_hash(spec)}' (the folder's)"
