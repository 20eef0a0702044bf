"""The per-layer weight-histogram figure of the one-shot kind: one panel per layer, each configuration's share of
weights below 1 % of the layer max in the legend (checked against numpy)."""

import numpy as np

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
        legend = [text.get_text() for text in axis.get_legend().get_texts()]
        for label, text in zip(thetas, legend):
            values = np.abs(thetas[label][layer]).ravel()
            share = np.mean(values / values.max() < 0.01)
            assert text == f"{label}: {100 * share:.0f}% < 1% of max"
        assert len(axis.patches) == len(thetas)  # one step histogram per configuration
