"""The typed cell spec (bench_powerprop/cell_spec.py) and the config sections generated from typed declarations
(bench_powerprop/config/schema.py): one construction, one serialisation, one parse in the job; one declaration of
each setting."""

import dataclasses
import json

import pytest

from bench_powerprop.cell_spec import CellSpec, SpecError
from bench_powerprop.config import ConfigError, load_configs, load_yaml, merge_configs, validate_config
from bench_powerprop.config.prune import PruneOptions
from bench_powerprop.config.schema import SCHEMA_PATH, config_schema, generated_sections
from bench_powerprop.methods import METHODS
from bench_powerprop.options import OptionError, number, option
from bench_powerprop.pipelines import tiny_report_config
from bench_powerprop.plan import Plan
from bench_powerprop.training import options as train_options_module
from bench_powerprop.training.options import TrainOptions

from conftest import REPO


def tiny_plan() -> Plan:
    """Every kind's tiny experiment (lineage, a permuted base, variants) over the default config."""
    return Plan(merge_configs(load_configs([REPO / "configs" / "default.yaml"]), tiny_report_config()))


def test_the_job_reads_back_exactly_the_spec_the_plan_serialised():
    plan = tiny_plan()
    for cell in plan.cells:
        sent = json.loads(json.dumps(plan.spec(cell)))  # what the job's --spec carries
        received = CellSpec.from_dict(sent)
        assert received.as_dict() == plan.spec(cell)
        assert received.hash == plan.spec_hash(cell)
        assert received.cell == cell and received.facts == plan.cell_spec(cell).facts
        assert received.method_options == plan.cell_spec(cell).method_options  # typed, parsed once, equal
        # what the grid declares survives the trip (not only what the serialised form happens to hold)
        assert received.snapshot_steps == tuple(sorted(plan.grids[cell.experiment].block_of[cell].snapshot_steps))
        assert set(received.lineage) == set(plan.parents(cell))


def test_the_plan_builds_each_cell_spec_once_from_typed_options():
    plan = tiny_plan()
    cell = plan.cells[0]
    spec = plan.cell_spec(cell)
    assert plan.cell_spec(cell) is spec and isinstance(spec.train, TrainOptions)
    assert isinstance(spec.method_options, METHODS.options(cell.method))
    assert plan.spec(plan.cells[1])["train"] is plan.spec(cell)["train"]  # the experiment's section, shared


@pytest.mark.parametrize(("change", "message"), [
    (lambda spec: spec.pop("train"), "spec: missing train"),
    (lambda spec: spec.update(colour="red"), "spec.colour: unknown key"),
    (lambda spec: spec.update(method="nonexistent"), "spec.method: unknown method 'nonexistent'"),
    (lambda spec: spec["train"].update(lr=-1), "spec.train.lr: must be a finite number > 0"),
    (lambda spec: spec["method_options"].update(frequency=0), "spec.method_options.frequency: must be an integer >= 1"),
])
def test_a_bad_spec_is_one_line_naming_the_field(change, message):
    plan = tiny_plan()
    cell = next(cell for cell in plan.cells if cell.method == "gmp")
    spec = json.loads(json.dumps(plan.spec(cell)))
    change(spec)
    with pytest.raises((SpecError, OptionError)) as error:
        CellSpec.from_dict(spec)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


# -- the schema: generated from the typed declarations -----------------------------------------------------
def test_the_schema_file_declares_no_typed_section():
    """train, prune and the grid block are declared once, as typed options; the file holds the shape around them."""
    written = load_yaml(SCHEMA_PATH)["$defs"]
    assert not set(generated_sections()) & set(written)
    schema = config_schema()
    assert set(schema["$defs"]["train"]["properties"]) == {f.name for f in dataclasses.fields(TrainOptions)}
    assert set(schema["$defs"]["prune"]["properties"]) == {f.name for f in dataclasses.fields(PruneOptions)}
    assert schema["$defs"]["train"]["required"] == ["steps", "batch_size", "lr"]


def test_an_option_added_to_its_declaration_is_in_the_schema(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Extended(TrainOptions):
        new_option: float = option(0.0, "an option added later", check=number(minimum=0), neutral=0.0)

    config = load_configs([REPO / "configs" / "default.yaml"])
    config["experiments"]["oneshot_digits"]["train"]["new_option"] = 0.5
    with pytest.raises(ConfigError, match="train: Additional properties are not allowed"):
        validate_config(config)
    monkeypatch.setattr(train_options_module, "TrainOptions", Extended)
    validate_config(config)
    config["experiments"]["oneshot_digits"]["train"]["new_option"] = -1
    with pytest.raises(ConfigError, match=r"oneshot_digits\.train\.new_option: -1 is less than the minimum of 0"):
        validate_config(config)


@pytest.mark.parametrize(("section", "key", "value"), [
    ("train", "momentum", 1.0), ("train", "optimizer", "rmsprop"), ("train", "steps", 0), ("train", "compile", "yes"),
    ("train", "lr_decay_steps", [-1]), ("prune", "scope", "everywhere"), ("prune", "last_layer_keep_factor", 0.5),
    ("prune", "keep_levels", [0.0]), ("prune", "keep_levels", {"geomspace": [0.1, 1.0]}),
])
def test_schema_and_typed_check_reject_alike(section, key, value):
    """The generated schema rejects what the declaration's own check rejects (they are one declaration)."""
    config = load_configs([REPO / "configs" / "default.yaml"])
    config["experiments"]["oneshot_digits"][section][key] = value
    with pytest.raises(ConfigError, match=rf"oneshot_digits\.{section}\.{key}"):
        validate_config(config)
    typed = {"train": TrainOptions, "prune": PruneOptions}[section]
    with pytest.raises(OptionError, match=rf"^x\.{key}"):
        typed.parse({**config["experiments"]["oneshot_digits"][section]}, "x")


# -- the hashing rule, for a method's options ------------------------------------------------------------
def with_new_gmp_option(monkeypatch, default, neutral):
    base = METHODS.options("gmp")

    @dataclasses.dataclass(frozen=True)
    class Extended(base):
        new_option: float = option(default, "an option added later", check=number(), neutral=neutral)

    monkeypatch.setattr(METHODS.get("gmp"), "Options", Extended)


def test_a_method_option_added_at_its_neutral_value_changes_no_hash_and_a_changed_default_only_its_cells(monkeypatch):
    plan = tiny_plan()
    before = {cell: plan.spec_hash(cell) for cell in plan.cells}
    with_new_gmp_option(monkeypatch, default=0.0, neutral=0.0)
    plan = tiny_plan()
    assert {cell: plan.spec_hash(cell) for cell in plan.cells} == before
    gmp = [cell for cell in plan.cells if cell.method == "gmp"]
    assert gmp and all(plan.spec(cell)["method_options"]["new_option"] == 0.0 for cell in gmp)
    with_new_gmp_option(monkeypatch, default=0.5, neutral=0.0)
    plan = tiny_plan()
    changed = {cell for cell in plan.cells if plan.spec_hash(cell) != before[cell]}
    assert changed == set(gmp)
