"""The per-layer weight-histogram figure of the one-shot kind: one panel per layer, each configuration's cumulative
share of weights, which at 1 % of the layer max is the share numpy counts below it."""

import numpy as np
import pytest

from bench_powerprop.reporting.figures import per_layer_weight_histograms


def test_one_panel_per_layer_with_the_share_below_one_percent():
    generator = np.random.default_rng(0)
    thetas = {label: {"0.weight": generator.normal(size=(4, 1, 3, 3)) * scale, "3.weight": generator.normal(size=(5, 36)) ** 3}
              for label, scale in (("α=1", 1.0), ("α=2", 1e-3))}
    thetas["α=2"]["3.weight"][0, :5] = 0.0  # exact zeros are left out of the log histogram, counted below 1 %
    figure = per_layer_weight_histograms(thetas, "title")
    axes = figure.axes
    assert [axis.get_title() for axis in axes] == ["conv 0.weight (4, 1, 3, 3)", "dense 3.weight (5, 36)"]
    for axis, layer in zip(axes, ["0.weight", "3.weight"]):
        lines = [line for line in axis.get_lines() if not line.get_label().startswith("_")]
        assert [line.get_label() for line in lines] == list(thetas)  # one cumulative line per configuration
        for label, line in zip(thetas, lines):
            values = np.abs(thetas[label][layer]).ravel()
            share = 100 * np.mean(values / values.max() < 0.01)
            x, y = line.get_xdata(), line.get_ydata()
            below = np.searchsorted(x, -2.0)  # the last point below 1 % of the max (x is log10 of the relative size)
            assert (y[below - 1] if below else 0.0) == pytest.approx(share)
    assert [text.get_text() for text in figure.legends[0].get_texts()] == list(thetas)
