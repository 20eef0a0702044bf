"""The continual tables against sums done by hand, on rows shaped like the workflow's (``level`` empty)."""

import itertools

import numpy as np
import pandas as pd
import pytest

from bench_powerprop.reporting import continual
from bench_powerprop.reporting.rows import CONTINUAL_COLUMNS, OK, ROW_COLUMNS

ACCURACY = {  # (method, seed, tasks learnt, task evaluated) -> test accuracy
    ("packnet", 0, 1, 1): 0.90, ("packnet", 0, 2, 1): 0.90, ("packnet", 0, 2, 2): 0.70,
    ("packnet", 1, 1, 1): 0.80, ("packnet", 1, 2, 1): 0.80, ("packnet", 1, 2, 2): 0.60,
    ("efficient_packnet", 0, 1, 1): 0.95, ("efficient_packnet", 0, 2, 1): 0.95, ("efficient_packnet", 0, 2, 2): 0.85,
    ("efficient_packnet", 1, 1, 1): 0.85, ("efficient_packnet", 1, 2, 1): 0.85, ("efficient_packnet", 1, 2, 2): 0.75,
}
CAPACITY_TOTAL = {("packnet", 1): 0.5, ("packnet", 2): 1.0, ("efficient_packnet", 1): 0.2, ("efficient_packnet", 2): 0.3}


def task_rows() -> pd.DataFrame:
    rows = []
    for (method, seed, trained, evaluated), accuracy in ACCURACY.items():
        rows.append(dict.fromkeys(ROW_COLUMNS + CONTINUAL_COLUMNS, np.nan) | {
            "experiment": "continual_digits", "method": method, "variant": "default", "alpha": 2.0, "sparsity": 0.0,
            "seed": seed, "evaluation": "task", "test_accuracy": accuracy, "val_accuracy": accuracy, "status": OK,
            "trained_tasks": trained, "evaluated_task": evaluated, "capacity": 0.5, "capacity_new": 0.5,
            "capacity_total": CAPACITY_TOTAL[method, trained], "final": trained == 2,
        })
    return pd.DataFrame(rows, columns=ROW_COLUMNS + CONTINUAL_COLUMNS)


def test_rows_have_an_empty_level_like_the_workflows():
    assert task_rows()["level"].isna().all()


@pytest.mark.parametrize(("method", "trained"), list(itertools.product(["packnet", "efficient_packnet"], [1, 2])))
def test_average_over_tasks_seen_then_over_seeds(method, trained):
    per_seed = [np.mean([accuracy for (m, s, t, _), accuracy in ACCURACY.items() if (m, s, t) == (method, seed, trained)])
                for seed in (0, 1)]
    summary = continual.summary_table(task_rows())
    row = summary[(summary["method"] == method) & (summary["trained_tasks"] == trained)]
    assert len(row) == 1
    assert row["mean"].item() == pytest.approx(np.mean(per_seed))
    assert row["std"].item() == pytest.approx(np.std(per_seed, ddof=1))
    assert row["mean_capacity_total"].item() == pytest.approx(CAPACITY_TOTAL[method, trained])


def test_matrix_has_every_entry_with_its_capacity():
    matrix = continual.matrix_table(task_rows())
    assert len(matrix) == 2 * 3  # 2 methods × a lower-triangular 2 × 2 matrix
    assert matrix["mean_capacity"].notna().all() and matrix["mean_capacity_new"].notna().all()
    entry = matrix[(matrix["method"] == "packnet") & (matrix["trained_tasks"] == 2) & (matrix["evaluated_task"] == 2)]
    assert entry["mean"].item() == pytest.approx((0.70 + 0.60) / 2)


def test_the_average_accuracy_figure_draws_alpha_in_its_colour_of_every_figure():
    """One method at α = 1 and 2 (the default continual grids) in tab10 blue and orange, α = 1 black elsewhere."""
    from matplotlib.colors import to_hex

    from bench_powerprop.reporting.labels import ALPHA_COLOURS

    rows = task_rows()
    one_method = rows[rows["method"] == "efficient_packnet"]
    rows = pd.concat([one_method, one_method.assign(alpha=1.0)], ignore_index=True)
    figure = continual.average_accuracy_figure(rows, "e")
    drawn = {to_hex(line.get_color()) for line in figure.axes[0].get_lines() if not line.get_label().startswith("_")}
    assert drawn == {ALPHA_COLOURS[1.0], ALPHA_COLOURS[2.0]}
    both = continual.colours_of([("packnet", "default", 2.0), ("efficient_packnet", "default", 2.0)])
    assert len({to_hex(colour) for colour in both.values()}) == 2  # two methods at one α: told apart
