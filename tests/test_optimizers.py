"""The trainer's optimizers are torch's, bitwise, without importing torch._dynamo."""

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from bench_powerprop.training import optimizers

from conftest import REPO

CASES = {
    "sgd": (torch.optim.SGD, optimizers.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    "adam": (torch.optim.Adam, optimizers.Adam, {"lr": 1e-2}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_updates_and_state_as_torch_bitwise(name):
    stock_class, eager_class, options = CASES[name]
    torch.manual_seed(0)
    stock_model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    eager_model = copy.deepcopy(stock_model)
    stock, eager = stock_class(stock_model.parameters(), **options), eager_class(eager_model.parameters(), **options)
    for step in range(5):
        x, y = torch.randn(4, 8, generator=torch.Generator().manual_seed(step)), torch.tensor([0, 1, 2, 0])
        for model, optimizer in ((stock_model, stock), (eager_model, eager)):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    for a, b in zip(stock_model.parameters(), eager_model.parameters()):
        assert torch.equal(a, b)
    stock_state, eager_state = stock.state_dict(), eager.state_dict()
    assert stock_state["param_groups"] == eager_state["param_groups"]
    for key, value in stock_state["state"].items():
        assert all(torch.equal(value[k], eager_state["state"][key][k]) for k in value)
    restored = eager_class(eager_model.parameters(), **options)
    restored.load_state_dict(stock_state)
    assert restored.state_dict()["param_groups"] == stock_state["param_groups"]


def test_a_training_job_does_not_import_dynamo_or_pandas():
    code = ("import sys, torch; from bench_powerprop.training import optimizers; "
            "m = torch.nn.Linear(2, 2); o = optimizers.SGD(m.parameters(), lr=0.1, momentum=0.9); "
            "m(torch.ones(1, 2)).sum().backward(); o.step(); o.zero_grad(); o.load_state_dict(o.state_dict()); "
            "print(sorted(name for name in ('torch._dynamo', 'pandas') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"
