"""Sparse from the start through the real workflow: a tiny PAI grid with the sparse experiment as its
reference, a 2-level lottery chain with rewinding and controls, and gradient-flow curves. The DAG carries
the chain (a level's parents are its inputs); a level whose outputs are lost is retrained alone, its
finished ancestors never."""

import json

import pandas as pd
import pytest

from bench_powerprop.pipelines import PIPELINES

from conftest import REPO, assert_pipeline_outputs_written, run_snakemake
from helpers import cell_run_dir

TINY = str(REPO / "tests" / "configs" / "tiny_sparse_from_start.yaml")
KINDS = ("pai", "lottery", "gradflow")  # each runs as experiment <kind>_digits
LEVEL = {level: cell_run_dir([TINY], "lottery_digits", method="lottery", alpha=2, sparsity=0, seed=0, level=level)
         for level in (0, 1, 2)}


def planned_train_jobs(workdir) -> list[str]:
    planned = run_snakemake("-n", "--configfile", TINY, cwd=workdir).stdout
    return [line.split("output: ")[1].split(",")[0] for line in planned.splitlines() if line.strip().startswith("output: ") and
            "/runs/" in line and line.split("output: ")[1].split(",")[0].endswith("metrics.json")]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pai_lottery_and_gradflow_end_to_end(workdir):
    planned = run_snakemake("-n", "-p", "--configfile", TINY, cwd=workdir).stdout
    level_two = next(block for block in planned.split("\n\n") if f"output: {LEVEL[2]}/metrics.json" in block)
    assert f"{LEVEL[1]}/model.pt" in level_two and f"{LEVEL[0]}/snapshots" in level_two  # the chain is the DAG

    run_snakemake("-c2", "--configfile", TINY, cwd=workdir)
    for kind in KINDS:
        assert_pipeline_outputs_written(workdir / "results" / f"{kind}_digits", kind)

    lottery = pd.read_csv(workdir / "results/lottery_digits/tables/lottery_runs.csv")
    assert sorted(lottery.loc[lottery["method"] == "lottery", "level"].tolist()) == [0, 1, 1, 2]
    at_level = lottery[lottery["level"] == 2].set_index("method")["actual_sparsity"]
    assert at_level["lottery"] == at_level["lottery_reinit"] == at_level["lottery_scratch"] > 0.8
    assert "ticket, rewind to step 10" in (workdir / "results/lottery_digits/tables/lottery_summary.md").read_text()

    pai = (workdir / "results/pai_digits/tables/pai_summary.md").read_text()
    assert "Rows dense, rigl are from experiment 'sparse_digits'" in pai and "NOT comparable" in pai and "Tanaka et al. 2020" in pai
    norms = pd.read_csv(workdir / "results/gradflow_digits/tables/gradflow_norms.csv")
    assert sorted(norms["step"].unique()) == [0, 10, 20, 30] and len(norms) == 3 * 4 and (norms["grad_norm"] > 0).all()

    finished = {level: (workdir / f"{LEVEL[level]}/metrics.json").stat().st_mtime_ns for level in (0, 1)}
    # Level 2 is lost before the experiment's tables were written (a killed job resumes bitwise: tests/test_lottery.py)
    (workdir / f"{LEVEL[2]}/metrics.json").unlink()
    for name in PIPELINES["lottery"].outputs:
        (workdir / "results/lottery_digits" / name).unlink()
    jobs = planned_train_jobs(workdir)  # the level and the controls trained on its mask; nothing upstream
    assert f"{LEVEL[2]}/metrics.json" in jobs and all("/level~2/h~" in job for job in jobs)
    run_snakemake("-c2", "--configfile", TINY, cwd=workdir)
    assert {level: (workdir / f"{LEVEL[level]}/metrics.json").stat().st_mtime_ns for level in (0, 1)} == finished
    spec = json.loads((workdir / f"{LEVEL[2]}/run.json").read_text())["spec"]
    assert spec["lineage"]["mask_from"]["path"] == f"{LEVEL[1]}/model.pt" and spec["level"] == 2

    again = run_snakemake("-n", "--configfile", TINY, cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr
