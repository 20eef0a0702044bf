"""Every figure the report draws is legible: no two texts overlap (titles, axis and tick labels, legends, colour
keys; compared as drawn boxes), accuracy is in percent, and each figure's own fixes hold.

The fast tests draw figures from rows shaped like the default config's largest grids (the legends and
panel titles that collided there); the slow one redraws every figure of a real tiny run of every pipeline kind.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bench_powerprop.io import read_json
from bench_powerprop.pipelines import PIPELINES
from bench_powerprop.reporting import curves, figures, reports
from bench_powerprop.reporting import published as pub
from bench_powerprop.reporting.labels import ALPHA_COLOURS, alpha_label
from bench_powerprop.reporting.rows import ROW_COLUMNS

from conftest import REPO
from figure_layout import (
    MAX_SIDE_PX,
    SAVED_DPI,
    drawn_texts,
    overlapping_texts,
    same_looking_lines,
    saved_size_px,
    texts_outside_the_canvas,
)

FIGURE_SPECS = [(kind, role) for kind, pipeline in PIPELINES.items() for role in pipeline.figures] + [("every kind", "training_curves")]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# -- the checker ---------------------------------------------------------------------------------
def test_the_checker_finds_colliding_titles_and_passes_separate_ones():
    figure, axes = plt.subplots(1, 2, figsize=(4, 2))
    axes[0].set_title("a long title that runs into its neighbour's")
    axes[1].set_title("and the neighbour's own title")
    assert ("a long title that runs into its neighbour's", "and the neighbour's own title") in overlapping_texts(figure)
    axes[0].set_title("left")
    axes[1].set_title("right")
    assert overlapping_texts(figure) == []


def test_the_checker_finds_text_past_the_canvas_and_figures_too_large():
    figure, axis = plt.subplots(figsize=(4, 3), layout="constrained")
    axis.set_ylabel("a label")
    assert texts_outside_the_canvas(figure) == []
    figure.text(-0.05, 0.5, "cut at the left edge")
    figure.text(0.9, 0.5, "runs past the right edge")
    assert texts_outside_the_canvas(figure) == ["cut at the left edge", "runs past the right edge"]
    assert max(saved_size_px(figure)) <= MAX_SIDE_PX
    figure.set_size_inches(MAX_SIDE_PX / 150 + 1, 3)
    assert max(saved_size_px(figure)) > MAX_SIDE_PX


def test_the_checker_skips_the_labels_of_ticks_outside_the_view():
    figure, axis = plt.subplots()
    axis.set_xticks([0, 1, 2], ["zero", "one", "two"])
    axis.set_xlim(-0.5, 0.5)
    assert "one" not in {text.get_text() for text, _ in drawn_texts(figure)}


# -- rows shaped like the default config ---------------------------------------------------------
def trained_rows(keys, alphas=(1.0, 2.0), seeds=(0, 1)) -> pd.DataFrame:
    """Tidy rows of every (method, variant, sparsity) in ``keys`` at every α and seed; accuracy falls with sparsity."""
    rng = np.random.default_rng(0)
    records = [{"experiment": "e", "method": method, "variant": variant, "alpha": alpha, "sparsity": sparsity, "seed": seed,
                "level": None, "evaluation": "trained", "target_sparsity": sparsity, "actual_sparsity": sparsity,
                "zero_fraction": sparsity, "test_accuracy": 0.95 - 0.3 * sparsity ** 8 + 0.01 * rng.random(),
                "val_accuracy": 0.9, "status": "ok", "training_flops_fraction": 1.0, "steps": 100, "spec_hash": "x"}
               for method, variant, sparsity in keys for alpha in alphas for seed in seeds]
    return pd.DataFrame(records, columns=ROW_COLUMNS)


PAI_SCORERS = {"random": "random", "magnitude": "magnitude", "snip": "snip", "grasp": "grasp", "synflow": "synflow",
               "force": "force", "snip_sparse_init": "snip", "synflow_sparse_init": "synflow"}


def pai_label(method, variant):
    return f"{PAI_SCORERS[variant]} + sparse-aware init" if variant.endswith("_sparse_init") else PAI_SCORERS.get(variant, method)


def test_pai_figure_of_the_default_grid_is_legible_and_spans_the_published_range():
    rows = trained_rows([("pai", variant, sparsity) for variant in PAI_SCORERS for sparsity in (0.9, 0.98)])
    reference = trained_rows([("dense", "default", 0.0), ("rigl", "default", 0.9), ("rigl", "default", 0.98),
                              ("static", "default", 0.9), ("static", "default", 0.98)])
    published = pub.load_curves(str(REPO / "configs" / "published_curves" / "synflow_cifar10.csv"))
    ours = published[published["method"].isin(set(PAI_SCORERS.values()))]
    figure = figures.pai_accuracy_vs_weights_remaining(rows, reference, pai_label, PAI_SCORERS, ours, "pai")
    assert overlapping_texts(figure) == []
    assert len({axis.get_xlim() for axis in figure.axes}) == 1  # ours on the published panels' axis
    legend = {text.get_text() for text in figure.legends[0].get_texts()}
    assert {"snip", "snip + sparse-aware init", "rigl (reference)", "static (reference)", "dense"} <= legend
    assert min(text.get_fontsize() for text in figure.legends[0].get_texts()) >= 9
    colours = {line.get_label(): line.get_color() for line in figure.axes[0].get_lines()}
    assert colours["rigl (reference)"] != "black" and colours["static (reference)"] != "black"
    assert texts_outside_the_canvas(figure) == [] and max(saved_size_px(figure)) <= MAX_SIDE_PX


def test_pai_figure_at_one_sparsity_is_one_row_per_variant_with_alpha_side_by_side():
    """The default grid: every variant at 98%, three of them also at α = 2; no line joins points of one sparsity."""
    rows = pd.concat([trained_rows([("pai", variant, 0.98) for variant in PAI_SCORERS], alphas=(1.0,)),
                      trained_rows([("pai", variant, 0.98) for variant in ("random", "snip", "synflow")], alphas=(2.0,))])
    reference = trained_rows([("dense", "default", 0.0), ("rigl", "default", 0.95), ("static", "default", 0.95)], alphas=(1.0,))
    figure = figures.pai_accuracy_vs_weights_remaining(rows, reference, pai_label, PAI_SCORERS, pd.DataFrame(
        columns=["model", "method", "sparsity", "run", "top1_accuracy_percent"]), "pai")
    (axis,) = figure.axes
    names = [label.get_text() for label in axis.get_yticklabels()]
    assert names[:len(PAI_SCORERS)] == sorted(names[:len(PAI_SCORERS)], key=lambda name: name.split(" ")[0] != "random")
    assert "rigl at 95% (reference)" in names and len(names) == len(PAI_SCORERS) + 2
    assert "snip + sparse-aware init" in names and names.index("snip + sparse-aware init") == names.index("snip") + 1
    colours = {ALPHA_COLOURS[1.0], ALPHA_COLOURS[2.0]}
    assert {container.lines[0].get_color() for container in axis.containers} == colours
    joining = [line for line in axis.get_lines() if len(set(line.get_xdata())) > 1 and len(set(line.get_ydata())) > 1]
    assert not joining  # only separators and the dense line, each straight across
    assert overlapping_texts(figure) == [] and texts_outside_the_canvas(figure) == []


def test_pai_figure_of_the_default_grid_rows_at_its_one_sparsity_and_the_sweep_beside():
    """configs/default.yaml: every variant at 98%, synflow also at 80-95%: the line figure stacked 8 variants' dots at 2%."""
    rows = pd.concat([trained_rows([("pai", variant, 0.98) for variant in PAI_SCORERS], alphas=(1.0,)),
                      trained_rows([("pai", "synflow", sparsity) for sparsity in (0.8, 0.9, 0.95)], alphas=(1.0,))])
    reference = trained_rows([("dense", "default", 0.0), ("rigl", "default", 0.95)], alphas=(1.0,))
    published = pub.load_curves(str(REPO / "configs" / "published_curves" / "synflow_cifar10.csv"))
    figure = figures.pai_accuracy_vs_weights_remaining(rows, reference, pai_label, PAI_SCORERS, published, "pai")
    rows_axis, sweep_axis = figure.axes
    assert len(rows_axis.get_yticklabels()) == len(PAI_SCORERS) + 1  # every variant a row at 98%, and rigl at 95%
    assert {line.get_label() for line in sweep_axis.get_lines()} >= {"synflow", "rigl (reference)"}
    assert sweep_axis.get_xscale() == "log" and "published" not in " ".join(axis.get_title() for axis in figure.axes)
    assert overlapping_texts(figure) == [] and texts_outside_the_canvas(figure) == [] and same_looking_lines(figure) == []


def test_lottery_figure_of_the_default_chain_has_a_tick_per_level_and_a_difference_label_that_fits():
    """Levels 0-3 at 80% a level, the ticket, a replicate and the reinit controls: the difference panel's label ran
    into the accuracy panel's ticks, its axis had no tick at -2 pp, and 80% and 64% had no tick."""
    records = [{"method": method, "variant": variant, "level": level, "actual_sparsity": 1 - 0.8 ** level,
                "test_accuracy": 0.96 - (0.01 if method == "lottery_reinit" else 0.002) * level - 0.001 * seed}
               for method, variant in (("lottery", "default"), ("lottery", "replicate"), ("lottery_reinit", "default"))
               for level in range(0 if (method, variant) == ("lottery", "default") else 1, 4) for seed in range(5)]
    rows = pd.DataFrame([{**dict.fromkeys(ROW_COLUMNS), "experiment": "e", "alpha": 1.0, "sparsity": 0.0,
                          "seed": index % 5, "evaluation": "trained", "status": "ok", **record}
                         for index, record in enumerate(records)], columns=ROW_COLUMNS)
    figure = figures.lottery_ticket_vs_controls(rows, figures.method_label, "lottery_digits (digits)")
    bottom = figure.axes[1]
    assert [label.get_text() for label in bottom.get_xticklabels()] == ["100", "80", "64", "51.2"]
    low, high = bottom.get_ylim()
    assert {tick for tick in bottom.get_yticks() if low <= tick <= high} >= {-2, -1, 0}
    assert overlapping_texts(figure) == [] and texts_outside_the_canvas(figure) == []


def test_gradient_flow_figure_shows_dense_and_the_lines_on_it_and_stretches_the_first_steps():
    keys = [("dense", "default", 0.0), ("gmp", "default", 0.95), ("static", "default", 0.95), ("static", "sparse_init", 0.95),
            ("static", "ticket", 0.95), ("set", "default", 0.95), ("rigl", "default", 0.95)]
    steps = np.arange(0, 1001, 25)
    norms = pd.DataFrame([{"method": method, "variant": variant, "sparsity": sparsity, "alpha": alpha, "seed": seed,
                           "status": "ok", "step": step, "grad_norm": 1.0 + step, "grad_norm_theta": 2.0 + step}
                          for method, variant, sparsity in keys for alpha in (1.0, 2.0) for seed in (0, 1) for step in steps])
    figure = figures.gradient_norm_vs_step(norms, figures.method_label, "gradflow")
    assert overlapping_texts(figure) == []
    for axis in figure.axes:
        lines = [line for line in axis.get_lines() if len(line.get_xdata())]
        dense = next(line for line in lines if line.get_label() == "dense")
        others = [line for line in lines if line is not dense]
        # dense beneath, wider than any line drawn over it: GMP while still dense shows inside it
        assert dense.get_zorder() < min(line.get_zorder() for line in others)
        assert dense.get_linewidth() >= 3 * max(line.get_linewidth() for line in others)
        assert len({(line.get_linestyle(), line.get_marker(), str(line.get_color())) for line in lines}) == len(lines)
        assert axis.get_xscale() == "symlog"
        # the first 100 steps take at least a third of the axis (a linear axis gave them a tenth)
        to_axis = axis.transAxes.inverted().transform
        start, hundred = (to_axis(axis.transData.transform((step, 1.0)))[0] for step in (0, 100))
        assert hundred - start > 1 / 3


def test_weight_histograms_overlay_every_configuration_as_a_cumulative_share_on_a_log_axis():
    labels = [f"adaptive_alpha [{variant}], α={alpha} (Powerprop)" for variant in ("default", "capped", "fixed")
              for alpha in (1.5, 2)]
    rng = np.random.default_rng(0)
    magnitudes = {label: rng.random(1000) ** (1 + index) for index, label in enumerate(labels)}
    colours = {label: ALPHA_COLOURS[2.0 if "α=2" in label else 1.5] for label in labels}
    figure = figures.weight_histograms(magnitudes, "adaptive: effective weights after training", colours)
    assert overlapping_texts(figure) == []
    (axis,) = figure.axes
    assert axis.get_yscale() == "log"
    lines = {line.get_label(): line for line in axis.get_lines() if not line.get_label().startswith("_")}
    assert len(lines) == 6
    for label, values in magnitudes.items():
        share = 100 * np.mean(values < 0.01)
        (line,) = [line for name, line in lines.items() if name.startswith(label + ":")]
        assert line.get_color() == colours[label] and f"{share:.0f}% below 1%" in line.get_label()
        x, y = line.get_xdata(), line.get_ydata()
        assert y[np.searchsorted(x, -2.0) - 1] == pytest.approx(share, abs=0.11)  # the curve at 1% of the max is the share


def test_per_layer_histograms_wrap_at_three_panels_a_row():
    rng = np.random.default_rng(0)
    layers = {f"{index}.weight": rng.normal(size=(20, 20)) for index in range(5)}  # LeNet-5 has five layers
    figure = figures.per_layer_weight_histograms({"α=1 (no Powerprop)": layers, "α=2 (Powerprop)": layers}, "cnn")
    assert len(figure.axes) == 5 and len(figure.legends) == 1
    assert len({round(axis.get_position().y0, 3) for axis in figure.axes}) == 2
    assert overlapping_texts(figure) == [] and texts_outside_the_canvas(figure) == []


def test_training_curves_of_many_groups_get_a_pair_of_panels_per_method_and_one_colour_per_alpha():
    from bench_powerprop.training.progress import LOG_COLUMNS

    grid = [("dense", 0.0, 1.0)] + [(method, sparsity, alpha) for method in ("gmp", "rigl") for sparsity in (0.95, 0.99)
                                    for alpha in (1.0, 1.5, 2.0)] + [("set", 0.95, 1.0), ("set", 0.99, 1.0)]
    logs = pd.DataFrame([{"experiment": "e", "method": method, "variant": "default", "alpha": alpha, "sparsity": sparsity,
                          "seed": seed, "level": None, "step": step, "phase": "train", "loss": 1.0 / step + sparsity,
                          "batch_accuracy": 0.5, "lr": 0.1, "val_accuracy": 0.9 - sparsity / 10}
                         for method, sparsity, alpha in grid for seed in (0, 1) for step in (10, 20, 30)])
    logs = logs[[*curves.AXIS_NAMES, *LOG_COLUMNS]]
    figure = curves.training_curves_figure(logs, "e")
    assert len(figure.axes) == 2 * 4  # dense, gmp, rigl, set: loss over validation accuracy each
    for axis in figure.axes:
        lines = [line for line in axis.get_lines() if len(line.get_xdata())]
        assert len(lines) <= curves.MAX_LINES
        for line in lines:
            alpha = next(value for value in ALPHA_COLOURS if line.get_label().endswith(alpha_label(value)))
            assert line.get_color() == ALPHA_COLOURS[alpha]
    titles = [axis.get_title() for axis in figure.axes]
    assert len(set(titles)) == len(titles) and "gmp: training loss" in titles
    gmp = next(axis for axis in figure.axes if axis.get_title() == "gmp: training loss")
    styles = {line.get_label(): line.get_linestyle() for line in gmp.get_lines()}
    assert len({style for label, style in styles.items() if label.startswith("95%")}) == 1  # α by colour only (unset level)
    assert styles["95%, α=1 (no Powerprop)"] != styles["99%, α=1 (no Powerprop)"]
    assert overlapping_texts(figure) == [] and texts_outside_the_canvas(figure) == []


def test_training_curves_of_ten_method_facets_fit_the_size_limit():
    """The default's pai_digits draws ten method [variant] pairs (three rows of four): 2,715 px tall before."""
    from bench_powerprop.training.progress import LOG_COLUMNS

    variants = [f"v{index}" for index in range(10)]
    logs = pd.DataFrame([{"experiment": "e", "method": "pai", "variant": variant, "alpha": 1.0, "sparsity": sparsity,
                          "seed": 0, "level": None, "step": step, "phase": "train", "loss": 1.0 / step + sparsity,
                          "batch_accuracy": 0.5, "lr": 0.1, "val_accuracy": 0.9 - sparsity / 10}
                         for variant in variants for sparsity in (0.8, 0.9, 0.95, 0.98) for step in (10, 20, 30)])
    figure = curves.training_curves_figure(logs[[*curves.AXIS_NAMES, *LOG_COLUMNS]], "e")
    assert len(figure.axes) == 2 * len(variants)
    assert max(saved_size_px(figure)) <= MAX_SIDE_PX, saved_size_px(figure)
    assert overlapping_texts(figure) == [] and texts_outside_the_canvas(figure) == []


# -- every figure of a real tiny run ---------------------------------------------------------------
@pytest.fixture(scope="module")
def drawn(report_run):
    """{(kind, role): figure}: every figure of the tiny run drawn again, as its report job draws it, not saved."""
    import os

    previous = os.getcwd()
    os.chdir(report_run)  # cells' run directories are relative to the run's working directory
    captured, found = {}, {}
    original = figures.save_all
    figures.save_all = captured.update
    try:
        for path in sorted((report_run / "results").glob("*/manifest.json")):
            manifest = read_json(path)
            kind = manifest["kind"]
            reports.write_figures(manifest, path.parent, str(REPO / "configs" / "published_curves" / "synflow_cifar10.csv"))
            for role, name in PIPELINES[kind].figures.items():
                found[(kind, role)] = captured.pop(path.parent / name)
            found[("every kind", f"training_curves of {kind}")] = curves.training_curves_figure(curves.log_rows(manifest), kind)
    finally:
        figures.save_all = original
        os.chdir(previous)
    yield found
    plt.close("all")


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "role"), FIGURE_SPECS)
def test_no_text_overlaps_in_any_figure_of_the_report(drawn, kind, role):
    found = {key: figure for key, figure in drawn.items() if key[0] == kind and key[1].startswith(role)}
    assert found, (kind, role)
    for key, figure in found.items():
        assert overlapping_texts(figure) == [], key
        assert texts_outside_the_canvas(figure) == [], key
        assert same_looking_lines(figure) == [], key
        assert max(saved_size_px(figure)) <= MAX_SIDE_PX, (key, saved_size_px(figure))
        for axis in figure.axes:
            if "accuracy" in axis.get_ylabel():
                assert "%" in axis.get_ylabel(), key
                values = [np.asarray(line.get_ydata(), dtype=float) for line in axis.get_lines() if len(line.get_ydata())]
                assert not values or np.nanmax(np.concatenate(values)) > 1, key  # percent, not a fraction
            for image in axis.get_images():  # the continual accuracy matrix: its scale spans the values, not 0-100
                low, high = image.get_clim()
                values = np.asarray(image.get_array(), dtype=float)
                values = values[np.isfinite(values)]
                assert low <= values.min() and values.max() <= high and high - low < 100, key
        assert not [text for text, _ in drawn_texts(figure) if text.get_text().startswith("×")], key


def test_training_curves_draw_one_line_per_cell_group_with_the_mean_over_seeds(tmp_path):
    from bench_powerprop.training.progress import LOG_COLUMNS, csv_text

    cells = []
    for alpha in (1.0, 2.0):
        for seed in (0, 1):
            run_dir = tmp_path / f"alpha{alpha}_seed{seed}"
            run_dir.mkdir()
            loss = [float("nan")] * 3 if (alpha, seed) == (2.0, 1) else [2.0 - seed, 1.0 - seed / 2, 0.5]
            rows = [{"step": 10 * (index + 1), "phase": "train", "loss": value, "batch_accuracy": 0.5, "lr": 0.1,
                     "val_accuracy": 0.8 + seed / 10 if index == 2 else float("nan")} for index, value in enumerate(loss)]
            (run_dir / "train_log.csv").write_text(csv_text(rows, LOG_COLUMNS))
            cells.append({"experiment": "e", "method": "dense", "variant": "default", "alpha": alpha, "sparsity": 0.0, "seed": seed,
                          "run_dir": str(run_dir)})
    figure = curves.training_curves_figure(curves.log_rows({"cells": cells}), "e")
    loss_axis, accuracy_axis = figure.axes
    lines = {line.get_label(): line for line in loss_axis.get_lines()}
    assert set(lines) == {"α=1 (no Powerprop)", "α=2 (Powerprop) (1/2 diverged)"}
    assert list(lines["α=1 (no Powerprop)"].get_ydata()) == [1.5, 0.75, 0.5]  # mean over seeds 0 and 1
    assert list(lines["α=2 (Powerprop) (1/2 diverged)"].get_ydata()) == [2.0, 1.0, 0.5]  # the finite seed alone
    accuracy = {line.get_label(): list(line.get_ydata()) for line in accuracy_axis.get_lines()}
    assert accuracy["α=1 (no Powerprop)"] == [pytest.approx(85.0)]  # percent, at the one evaluated step
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["α=1 (no Powerprop)", "α=2 (Powerprop)"]
    assert overlapping_texts(figure) == []


def test_training_curves_of_groups_that_differ_only_in_method_or_variant_are_told_apart():
    """adaptive_alpha [default] vs [fixed] at one α (and static vs static + sparse-aware init) drew as one style."""
    from bench_powerprop.training.progress import LOG_COLUMNS

    logs = pd.DataFrame([{"experiment": "e", "method": "adaptive_alpha", "variant": variant, "alpha": 1.5, "sparsity": 0.0,
                          "seed": 0, "level": None, "step": step, "phase": "train", "loss": 1.0 / step, "batch_accuracy": 0.5,
                          "lr": 0.1, "val_accuracy": 0.8} for variant in ("default", "fixed") for step in (10, 20)])
    figure = curves.training_curves_figure(logs[[*curves.AXIS_NAMES, *LOG_COLUMNS]], "e")
    assert len(figure.axes[0].get_lines()) == 2 and same_looking_lines(figure) == []


def test_training_curves_of_runs_that_logged_no_step_say_so(tmp_path):
    run_dir = tmp_path / "cell"
    run_dir.mkdir()
    from bench_powerprop.training.progress import LOG_COLUMNS

    (run_dir / "train_log.csv").write_text(",".join(LOG_COLUMNS) + "\n")  # train.log_every > train.steps
    cell = {"experiment": "e", "method": "dense", "variant": "default", "alpha": 1.0, "sparsity": 0.0, "seed": 0,
            "run_dir": str(run_dir)}
    figure = curves.training_curves_figure(curves.log_rows({"cells": [cell]}), "e")
    assert any("no training step was logged" in text.get_text() for text, _ in drawn_texts(figure))
    plt.close(figure)


def test_pai_labels_name_a_reference_experiments_method_the_pai_experiment_does_not_run():
    """The PaI figure draws sparse_digits' static cells as a reference; pai_digits itself has no static options."""
    manifest = {"method_options": {"pai": {"snip": {"scorer": "snip", "shuffle": "none", "reinit": False, "init": "dense"}}}}
    label = reports.sparse_from_start_labels(manifest)
    assert label("static", "default") == figures.method_label("static", "default")
    assert label("pai", "snip") == "snip"


def test_forest_rows_of_the_default_run_have_distinct_uncut_labels():
    """Its L3 rows (variant = synflow vs variant = synflow_shuffled: sparsity = …) were cut to one label."""
    from bench_powerprop.reporting import forest

    claims = pd.read_csv(REPO / "docs" / "default_run" / "claims.csv", keep_default_na=False)
    shown = claims[(claims["role"] == forest.SHOWN_ROLE) & (claims["effect"] != "")]
    labels = [forest.row_label(row) for row in shown.to_dict("records")]
    assert len(set(labels)) == len(labels) and not [label for label in labels if label.endswith("…")]
    assert "L3b pai_digits [synflow vs synflow_shuffled_reinit, sparsity 0.98]" in labels


def test_the_forest_of_the_default_run_fits_the_size_limit_without_overlaps():
    """68 rows in 6 units drew 2,435 px tall at the forest's dpi."""
    from bench_powerprop.reporting import forest

    claims = pd.read_csv(REPO / "docs" / "default_run" / "claims.csv", keep_default_na=False)
    claims["effect"] = pd.to_numeric(claims["effect"], errors="coerce")
    for column in ("low", "high", "margin", "min_effect_value"):
        claims[column] = pd.to_numeric(claims[column], errors="coerce")
    figure = forest.forest_figure(claims)
    width, height = saved_size_px(figure)
    assert max(width, height) * forest.DPI / SAVED_DPI <= MAX_SIDE_PX, (width, height)
    assert overlapping_texts(figure) == [] and texts_outside_the_canvas(figure) == []


def test_deploy_figure_draws_alpha_in_its_colour_with_plain_log_ticks():
    """The quick start's deploy figure: α = 1 and 2 in tab10 blue and orange, ticks 4×10⁻², a 6 pt legend on one panel."""
    from matplotlib.colors import to_hex

    from bench_powerprop.deploy import FIGURE_BATCH, SIMULATED, deploy_figure, deployed_form

    form = deployed_form("unstructured")
    table = pd.DataFrame([{"batch_size": FIGURE_BATCH, "method": "dense", "alpha": alpha, "structure": "unstructured",
                           "form": form, "sparsity": sparsity, "median_ms": 0.03 + sparsity / 10, "stored_bytes": 3e4 / sparsity,
                           "test_accuracy": 0.9 - sparsity / 2} for alpha in (1.0, 2.0) for sparsity in (0.5, 0.9)]
                         + [{"batch_size": FIGURE_BATCH, "method": "dense", "alpha": 1.0, "structure": "unstructured",
                             "form": SIMULATED, "sparsity": 0.0, "median_ms": 0.09, "stored_bytes": 2e5, "test_accuracy": 0.95}])
    figure = deploy_figure(table, "oneshot_digits")
    drawn = {to_hex(line.get_color()) for line in figure.axes[0].get_lines() if line.get_label().startswith("dense α")}
    assert drawn == {ALPHA_COLOURS[1.0], ALPHA_COLOURS[2.0]} and len(figure.legends) == 1
    ticks = [text.get_text() for text, _ in drawn_texts(figure) if text in figure.axes[0].get_xticklabels()]
    assert ticks and not [tick for tick in ticks if "10^" in tick or "×" in tick or "$" in tick]
    assert overlapping_texts(figure) == [] and texts_outside_the_canvas(figure) == []
