"""The core carries more than one pipeline shape: variants side by side, and cells that start from
another cell's snapshot weights and final mask, with the parents' files as real Snakemake inputs."""

import json
import sys
import textwrap

import pandas as pd
import pytest
import torch

from bench_powerprop.config import load_configs, merge_configs, validate_config
from bench_powerprop.methods import METHODS
from bench_powerprop.pipelines import PIPELINES, Figure, Shown, _Kinds, resolve, rule_files, tiny_report_config
from bench_powerprop.plan import Plan

from conftest import REPO, run_snakemake
from helpers import cell_run_dir

TINY_SHAPES = str(REPO / "tests" / "configs" / "tiny_shapes.yaml")


def run_dir(method, sparsity, variant="default"):
    return cell_run_dir([TINY_SHAPES], "sparse_digits", method=method, variant=variant, alpha=2, sparsity=sparsity, seed=0)


DENSE, GMP, FROM_STEP_10, TICKET = run_dir("dense", 0), run_dir("gmp", 0.9), run_dir("static", 0.8), run_dir("static", 0.9)


def test_every_output_the_report_shows_has_its_caption():
    """The workflow's table and figure rules are generated from PIPELINES; each caption they name is a file."""
    captions = {shown.caption for pipeline in PIPELINES.values() for shown in pipeline.shown.values()}
    assert sorted(name for name in captions if not (REPO / "workflow" / "report" / f"{name}.rst").is_file()) == []


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_every_kind_names_writers_titles_and_rules_that_exist(kind):
    pipeline = PIPELINES[kind]
    assert callable(resolve(pipeline.tables_writer)) and callable(resolve(pipeline.figures_writer))
    assert all(callable(resolve(draw)) for _, draw in pipeline.extra_figures)
    if pipeline.extra_columns:
        assert isinstance(resolve(pipeline.extra_columns), list)
    if "markdown" in pipeline.tables:
        assert pipeline.titles.get("markdown"), "the writer titles its Markdown table from the kind's declaration"
    assert all((REPO / "workflow" / "rules" / name).is_file() for name in rule_files())
    if pipeline.tables_by_own_rule:
        assert pipeline.rule_file, "tables written by a rule of the kind's own: it names its rule file"


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_every_kind_brings_a_tiny_experiment_of_its_kind_that_plans(kind):
    """The tiny report run of the tests (tests/conftest.py: report_run) is every kind's own ``tiny`` experiment."""
    config = merge_configs(load_configs([REPO / "configs" / "default.yaml"]), tiny_report_config())
    names = list(PIPELINES[kind].tiny)
    assert names and all(config["experiments"][name]["kind"] == kind for name in names)
    validate_config(config)  # what the workflow checks before any job (lineage, options, the kind's requirements)
    plan = Plan(config)
    assert {cell.experiment for cell in plan.cells} >= set(names)


def test_a_new_module_adds_a_kind_and_a_figure_to_an_existing_kind(tmp_path, monkeypatch):
    """Discovery, as a user extends it: one file declares a kind, another adds a figure to it."""
    package = tmp_path / "my_kinds"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mine.py").write_text(textwrap.dedent("""
        from bench_powerprop.pipelines import TABLES, Pipeline, Shown
        KIND = Pipeline("mine", "a kind of mine", tables={"runs": "tables/mine_runs.csv", "page": "tables/mine.html"},
                        shown={"page": Shown("mine", TABLES, "mine")}, tables_writer="w:t", figures_writer="w:f")
    """))
    (package / "mine_extra.py").write_text(textwrap.dedent("""
        from bench_powerprop.pipelines import ACCURACY_FIGURES, Figure, Shown
        FIGURES = (Figure("mine", "extra", "figures/extra.png", Shown("mine", ACCURACY_FIGURES, "extra"), "m:draw"),)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    kinds = _Kinds("my_kinds")
    mine = kinds["mine"]
    assert list(kinds) == ["mine"] and mine.figures == {"extra": "figures/extra.png"}
    assert mine.extra_figures == (("extra", "m:draw"),) and mine.shown["extra"].label == "extra"
    assert "figures/extra.png" in mine.outputs
    with pytest.raises(ValueError, match="declared twice"):
        mine.with_figure(Figure("mine", "extra", "figures/again.png", Shown("mine", "x", "again"), "m:draw"))
    (package / "orphan.py").write_text(textwrap.dedent("""
        from bench_powerprop.pipelines import Figure, Shown
        FIGURES = (Figure("nobody", "extra", "figures/x.png", Shown("mine", "x", "x"), "m:draw"),)
    """))
    sys.modules.pop("my_kinds", None)
    with pytest.raises(ValueError, match="unknown kind 'nobody'"):
        list(_Kinds("my_kinds"))


def test_a_new_kind_or_figure_module_leaves_every_trained_cell_current(monkeypatch):
    """Kinds plan and report, never train: a new module in bench_powerprop/kinds/ changes no cell's source hash."""
    from bench_powerprop import integrity

    real = integrity._source_digests()
    before = integrity.source_hash("gmp")
    monkeypatch.setattr(integrity, "_source_digests", lambda: {**real, "kinds/iterative_pruning.py": "0" * 64})
    assert integrity.source_hash("gmp") == before
    monkeypatch.setattr(integrity, "_source_digests", lambda: {**real, "training/new_step.py": "0" * 64})
    assert integrity.source_hash("gmp") != before  # the control: training code does


def test_report_labels_of_the_sparse_from_the_start_methods():
    """Reporting holds no method names: a cell's label is its method's ``report_label`` of its parsed options, else
    its method and variant."""
    from bench_powerprop.reporting.reports import sparse_from_start_labels

    def parsed(method, **given):
        return METHODS.options(method).parse(given, "methods." + method).as_dict()

    manifest = {"method_options": {
        "pai": {"a": parsed("pai", scorer="grasp", shuffle="within_layer", init="sparse_aware")},
        "lottery": {"default": parsed("lottery"), "k10": parsed("lottery", rewind_step=10, replicate=2)},
        "lottery_reinit": {"default": parsed("lottery_reinit", init="layer_scaled")},
        "lottery_scratch": {"default": parsed("lottery_scratch")},
        "static": {"default": parsed("static"), "si": parsed("static", init="sparse_aware")},
        "rigl": {"default": parsed("rigl")},
    }}
    label = sparse_from_start_labels(manifest)
    assert label("pai", "a") == "grasp, shuffled within layers + sparse-aware init"
    assert label("lottery", "default") == "ticket, rewind to init (k=0)"
    assert label("lottery", "k10") == "ticket, rewind to step 10, replicate 2"
    assert label("lottery_reinit", "default") == "random reinit (same mask) + layer-scaled init"
    assert label("lottery_scratch", "default") == "random mask (scratch)"
    assert (label("static", "default"), label("static", "si")) == ("static", "static + sparse-aware init")
    assert label("rigl", "default") == "rigl" and label("gmp", "uniform") == "gmp [uniform]"


def state(path):
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return payload["state_dict"]


def weights_and_biases(state_dict):
    return {key: value for key, value in state_dict.items() if key.endswith((".weight", ".bias"))}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_variants_and_lineage_through_the_workflow(workdir):
    planned = run_snakemake("-n", "-p", "--configfile", TINY_SHAPES, cwd=workdir).stdout
    child_job = next(block for block in planned.split("\n\n") if f"output: {TICKET}/metrics.json" in block)
    assert f"{DENSE}/metrics.json" in child_job and f"{GMP}/model.pt" in child_job  # the parents' files (snapshots: metrics.json)

    run_snakemake("-c2", "--configfile", TINY_SHAPES, cwd=workdir)

    # two variants of one method: distinct run directories, specs, rows and table lines
    specs = {variant: json.loads((workdir / run_dir("rigl", 0.9, variant) / "run.json").read_text())["spec"]
             for variant in ("default", "uniform")}
    assert specs["default"]["method_options"]["distribution"] == "erk"
    assert specs["uniform"]["method_options"]["distribution"] == "uniform"
    runs = pd.read_csv(workdir / "results/sparse_digits/tables/sparse_runs.csv")
    assert sorted(runs.loc[runs["method"] == "rigl", "variant"]) == ["default", "uniform"]
    table = pd.read_csv(workdir / "results/sparse_digits/tables/sparse_paper_table.csv")
    assert {"rigl, α=2 (Powerprop)", "rigl [uniform], α=2 (Powerprop)"} <= set(table["row"])
    assert "rigl [uniform]" in (workdir / "results/sparse_digits/tables/sparse_paper_table.md").read_text()

    # init_from: exactly the parent's weights at step 10 (under the child's own mask)
    parent = weights_and_biases(state(workdir / DENSE / "snapshots/step_00000010.pt"))
    child = state(workdir / FROM_STEP_10 / "snapshots/step_00000000.pt")
    for key, value in parent.items():
        if key.endswith(".weight"):
            kept = child[key.replace(".weight", ".weight_mask")] > 0
            assert torch.equal(child[key][kept], value[kept]) and (child[key][~kept] == 0).all(), key
        else:
            assert torch.equal(child[key], value), key
    assert json.loads((workdir / FROM_STEP_10 / "run.json").read_text())["spec"]["lineage"]["init_from"]["step"] == 10

    # mask_from: GMP's final mask, on the dense cell's initial weights
    gmp_final = state(workdir / GMP / "model.pt")
    ticket = state(workdir / TICKET / "snapshots/step_00000000.pt")
    initial = state(workdir / DENSE / "snapshots/step_00000000.pt")
    for key in (k for k in gmp_final if k.endswith(".weight_mask")):
        assert torch.equal(ticket[key], gmp_final[key]), key
        weight = key.replace("_mask", "")
        kept = ticket[key] > 0
        assert torch.equal(ticket[weight][kept], initial[weight][kept]), weight
    ticket_final = state(workdir / TICKET / "model.pt")
    assert all(torch.equal(ticket_final[key], gmp_final[key]) for key in gmp_final if key.endswith(".weight_mask"))

    again = run_snakemake("-n", "--configfile", TINY_SHAPES, cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr
