"""The core carries more than one pipeline shape: variants side by side, and cells that start from
another cell's snapshot weights and final mask, with the parents' files as real Snakemake inputs."""

import json

import pandas as pd
import pytest
import torch

from bench_powerprop.pipelines import PIPELINES

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
