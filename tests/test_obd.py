"""OBD (LeCun et al. 1989): s = θ²·H_kk/2, with H_kk checked against the full Hessian of an independent, hand-written
network (``torch.autograd.functional.hessian``) — a ReLU MLP and a ReLU + max-pool CNN, α = 1 and α > 1, masked."""

import pytest
import torch
from test_scorers import as_list, batches, forward_by_hand, inputs_for, small_mlp, thetas_by_hand
from torch import nn
from torch.nn import functional as F

from bench_powerprop import masks
from bench_powerprop.powerprop import powerpropify, weight_layers
from bench_powerprop.scoring import ScoringInputs, score
from bench_powerprop.scoring.obd import hessian_diagonal


def hessian_diagonals(loss_of, thetas):
    """The diagonal of each layer's block of the full Hessian of ``loss_of(list of θ)``."""
    diagonals = []
    for index, theta in enumerate(thetas):
        def layer_loss(flat, index=index):
            replaced = [flat.view_as(t) if i == index else t for i, t in enumerate(thetas)]
            return loss_of(replaced)

        full = torch.autograd.functional.hessian(layer_loss, theta.reshape(-1).double())
        diagonals.append(torch.diagonal(full).view_as(theta))
    return diagonals


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_obd_on_an_mlp_is_half_theta_squared_times_the_exact_hessian_diagonal(alpha):
    model = small_mlp(alpha).double()
    data = [(x.double(), y) for x, y in batches()]
    thetas, biases = thetas_by_hand(model)

    def loss_of(weights):
        return sum(F.cross_entropy(forward_by_hand(weights, biases, x), y) for x, y in data)

    expected = [theta**2 * diagonal / 2 for theta, diagonal in zip(thetas, hessian_diagonals(loss_of, thetas))]
    scores = as_list(score("obd", model, inputs_for(data)), model)
    for got, want in zip(scores, expected):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_obd_respects_the_mask_and_label_smoothing():
    model = small_mlp(2.0).double()
    data = [(x.double(), y) for x, y in batches(count=1)]
    mask = masks.prune(score("magnitude", model), 0.5)
    thetas, biases = thetas_by_hand(model)
    masked = [theta * mask[name] for theta, name in zip(thetas, weight_layers(model))]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

    def loss_of(weights):
        return sum(loss_fn(forward_by_hand(weights, biases, x), y) for x, y in data)

    expected = [theta**2 * diagonal / 2 for theta, diagonal in zip(masked, hessian_diagonals(loss_of, masked))]
    inputs = ScoringInputs(batches=data, loss_fn=loss_fn, mask=mask)
    for got, want in zip(as_list(score("obd", model, inputs), model), expected):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
        assert (got[want == 0] == 0).all()


def test_hessian_diagonal_of_a_relu_maxpool_cnn_is_exact():
    torch.manual_seed(0)
    model = powerpropify(nn.Sequential(nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2),
                                       nn.Flatten(), nn.Linear(8, 3)), 1.5).double()
    generator = torch.Generator().manual_seed(5)
    data = [(torch.randn(5, 36, generator=generator, dtype=torch.float64), torch.randint(0, 3, (5,), generator=generator))]
    conv, linear = weight_layers(model).values()
    thetas = [layer.weight.detach() * layer.weight.detach().abs() ** 0.5 for layer in (conv, linear)]

    def loss_of(weights):
        total = 0
        for x, y in data:
            hidden = F.max_pool2d(F.relu(F.conv2d(x.view(-1, 1, 6, 6), weights[0], conv.bias)), 2)
            total = total + F.cross_entropy(F.linear(hidden.flatten(1), weights[1], linear.bias), y)
        return total

    diagonal = hessian_diagonal(model, dict(zip(weight_layers(model), thetas)), data, F.cross_entropy)
    for got, want in zip(diagonal.values(), hessian_diagonals(loss_of, thetas)):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
