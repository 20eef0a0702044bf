"""The typed train block: every setting's default filled in before hashing, so a changed default
changes the spec hash of exactly the cells that rely on it; bad values are one-line errors."""

import copy
import dataclasses

import pytest

from bench_powerprop.config import validate_config
from bench_powerprop.options import OptionError
from bench_powerprop.plan import Plan
from bench_powerprop.training.options import TrainOptions

from helpers import digits_config


def two_experiments() -> dict:
    """oneshot_digits relies on the default label smoothing; its copy sets the same value explicitly."""
    config = digits_config(seed=0)
    explicit = copy.deepcopy(config["experiments"]["oneshot_digits"])
    explicit["train"]["label_smoothing"] = 0.0
    config["experiments"]["explicit_digits"] = explicit
    config["active_experiments"] = ["oneshot_digits", "explicit_digits"]
    validate_config(config)
    return config


def hashes(config) -> dict:
    plan = Plan(config)
    return {(cell.experiment, cell.path): plan.spec_hash(cell) for cell in plan.cells}


def test_every_train_setting_is_in_the_spec():
    plan = Plan(two_experiments())
    for cell in plan.cells:
        assert set(plan.spec(cell)["train"]) == {field.name for field in dataclasses.fields(TrainOptions)}


def test_a_changed_default_changes_the_hash_of_exactly_the_cells_relying_on_it(monkeypatch):
    config = two_experiments()
    before = hashes(config)
    assert "label_smoothing" not in config["experiments"]["oneshot_digits"]["train"]
    monkeypatch.setattr(TrainOptions.__dataclass_fields__["label_smoothing"], "default", 0.1)
    after = hashes(config)
    changed = {key[0] for key in before if before[key] != after[key]}
    unchanged = {key[0] for key in before if before[key] == after[key]}
    assert changed == {"oneshot_digits"} and unchanged == {"explicit_digits"}


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("momentum", 1.5, "train.momentum: must be a finite number >= 0 < 1, got 1.5"),
    ("gradient_norm_steps", [10, 10], "train.gradient_norm_steps: must not repeat a step, got [10, 10]"),
    ("lr", None, "train.lr: required"),
    ("optimiser", "sgd", "train.optimiser: unknown option (known: steps, batch_size, lr, optimizer,"),
])
def test_a_bad_train_setting_is_a_one_line_error(setting, value, message):
    """The train block of a spec (the schema checks a config's first; this is the declaration's own check)."""
    with pytest.raises(OptionError) as error:
        TrainOptions.parse({"steps": 10, "batch_size": 8, "lr": 0.1, setting: value}, "train")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
