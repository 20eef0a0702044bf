"""Sparse-aware initialisation (Evci et al. 2022): every kept weight of a unit is drawn with variance
scale / the unit's *active* fan; layer-scaled: dense ÷ √density; under Powerprop the values are θ, stored
as φ = sign(θ)|θ|^(1/α). Checked statistically on a wide layer whose units have very different fan-ins."""

import math

import pytest
import torch
from torch import nn

from bench_powerprop import masks
from bench_powerprop.config import ConfigError, validate_config
from bench_powerprop.masks import Mask
from bench_powerprop.powerprop import powerpropify, theta_from_phi, weight_layers
from bench_powerprop.sparse_init import active_fans, initialise, unit_scaled
from bench_powerprop.training.trainer import Trainer

from helpers import digits_config, digits_spec

FAN_INS = (10, 50, 250, 1250)
UNITS_PER_FAN = 40


def varied_fan_in_mask(fan_ins=FAN_INS, inputs=2000, seed=0) -> torch.Tensor:
    """(len(fan_ins)·UNITS_PER_FAN, inputs): output unit o keeps exactly fan_ins[o // UNITS_PER_FAN] random inputs."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for fan in fan_ins:
        for _ in range(UNITS_PER_FAN):
            row = torch.zeros(inputs, dtype=torch.bool)
            row[torch.randperm(inputs, generator=generator)[:fan]] = True
            rows.append(row)
    return torch.stack(rows)


def test_active_fans_count_kept_connections_of_each_unit():
    kept = torch.tensor([[1, 0, 1], [0, 0, 1]], dtype=torch.bool)  # (out 2, in 3)
    assert active_fans(kept, "fan_in").tolist() == [[2, 2, 2], [1, 1, 1]]
    assert active_fans(kept, "fan_out").tolist() == [[1, 1, 2], [1, 1, 2]]  # input 1 has no connection: floored at 1
    conv = torch.zeros(2, 3, 2, 2, dtype=torch.bool)
    conv[0, 1] = True  # output channel 0 keeps the 4 kernel positions of input channel 1
    assert active_fans(conv, "fan_in")[0].unique().tolist() == [4.0]
    assert active_fans(conv, "fan_out")[:, 1].unique().tolist() == [4.0]


@pytest.mark.parametrize("distribution", ["normal", "uniform", "truncated_normal"])
def test_per_unit_std_is_sqrt_scale_over_active_fan_in(distribution):
    kept, scale = varied_fan_in_mask(), 2.0
    theta = unit_scaled(kept, "fan_in", distribution, scale, torch.Generator().manual_seed(1))
    assert (theta[~kept] == 0).all()
    for index, fan in enumerate(FAN_INS):
        units = slice(index * UNITS_PER_FAN, (index + 1) * UNITS_PER_FAN)
        values = theta[units][kept[units]].double()
        expected = math.sqrt(scale / fan)
        # pooled over the units of one fan-in: n = 40·fan samples, relative s.e. of a std ≈ 1/√(2n) ≤ 1.8%
        assert values.std().item() == pytest.approx(expected, rel=0.08), (fan, distribution)
        assert abs(values.mean().item()) < 4 * expected / math.sqrt(values.numel())
    widest = slice(3 * UNITS_PER_FAN, 4 * UNITS_PER_FAN)
    per_unit = torch.stack([theta[o][kept[o]].double().std() for o in range(widest.start, widest.stop)])
    assert ((per_unit / math.sqrt(scale / FAN_INS[-1]) - 1).abs() < 0.12).all()  # each unit alone: 1,250 samples


def test_fan_out_mode_scales_by_each_input_units_active_connections():
    kept = varied_fan_in_mask().T.contiguous()  # now input unit i has fan-out FAN_INS[i // UNITS_PER_FAN]
    theta = unit_scaled(kept, "fan_out", "normal", 1.0, torch.Generator().manual_seed(2))
    for index, fan in enumerate(FAN_INS):
        columns = slice(index * UNITS_PER_FAN, (index + 1) * UNITS_PER_FAN)
        assert theta[:, columns][kept[:, columns]].std().item() == pytest.approx(math.sqrt(1.0 / fan), rel=0.08)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_initialise_sets_theta_and_stores_phi_for_alpha(alpha):
    torch.manual_seed(0)
    model = powerpropify(nn.Sequential(nn.Linear(2000, 160), nn.ReLU(), nn.Linear(160, 10)), alpha)
    layers = weight_layers(model)
    mask = Mask({"0.weight": varied_fan_in_mask(), "2.weight": torch.rand(10, 160, generator=torch.Generator().manual_seed(3)) < 0.5})
    masks.install(model, mask)
    initialise(model, mask, "sparse_aware", "fan_in", "normal", 1.0, torch.Generator().manual_seed(4))
    expected = unit_scaled(mask["0.weight"], "fan_in", "normal", 1.0, torch.Generator().manual_seed(4))
    phi = layers["0.weight"].weight.detach()
    torch.testing.assert_close(theta_from_phi(phi, alpha), expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(phi, torch.sign(expected) * expected.abs() ** (1 / alpha))


def test_layer_scaled_divides_the_dense_init_by_root_density():
    torch.manual_seed(0)
    model = powerpropify(nn.Sequential(nn.Linear(50, 40)), 2.0)
    dense = theta_from_phi(model[0].weight.detach(), 2.0).clone()
    kept = torch.rand(40, 50, generator=torch.Generator().manual_seed(1)) < 0.1
    masks.install(model, Mask({"0.weight": kept}))
    initialise(model, masks.forward_mask(model), "layer_scaled")
    density = int(kept.sum()) / kept.numel()
    torch.testing.assert_close(theta_from_phi(model[0].weight.detach(), 2.0), dense / math.sqrt(density) * kept, rtol=1e-5, atol=1e-7)


def test_static_with_sparse_aware_init_trains_and_resumes_bitwise(tmp_path):
    spec = digits_spec("static", alpha=2.0, sparsity=0.9, steps=30, options={"init": "sparse_aware"})
    full = Trainer(spec, tmp_path / "full", progress=False)
    kept = masks.forward_mask(full.model)
    first = weight_layers(full.model)["1.weight"]
    fans = kept["1.weight"].sum(1).float()
    theta = theta_from_phi(first.weight.detach(), 2.0)
    assert (theta[~kept["1.weight"]] == 0).all()
    energy = theta.pow(2).sum(1)[fans > 0]  # per unit: fan draws of variance 1/fan, so Σθ² ≈ 1 whatever the fan
    assert energy.mean().item() == pytest.approx(1.0, rel=0.15)
    full.run()
    partial = Trainer(spec, tmp_path / "resume", progress=False)
    while partial.step < 13:
        partial.train_step()
    partial.checkpoint()
    resumed = Trainer(spec, tmp_path / "resume", progress=False)
    resumed.run()
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_config_refuses_to_reinitialise_inherited_weights():
    config = digits_config("dense")
    experiment = config["experiments"]["oneshot_digits"]
    experiment["grid"] = [
        {"method": ["dense"], "alpha": [2], "sparsity": [0], "seed": [0], "snapshot_steps": [0]},
        {"method": ["static"], "alpha": [2], "sparsity": [0.9], "seed": [0],
         "init_from": {"cell": {"method": "dense", "sparsity": 0}, "step": 0}},
    ]
    experiment["methods"] = {"static": {"init": "sparse_aware"}}
    with pytest.raises(ConfigError, match=r"grid\[1\]: init_from gives this cell its weights, but its init option 'sparse_aware'"):
        validate_config(config)
