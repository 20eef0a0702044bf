"""Snapshots and inheritance (training/lineage.py) on a tiny model, without the trainer: what is saved, when, where
it is published, and what a child reads back from a parent's file."""

from __future__ import annotations

import fractions
import json

import pytest
import torch
from torch import nn

from bench_powerprop import masks
from bench_powerprop.powerprop import powerpropify, weight_layers
from bench_powerprop.training.lineage import INDEX, Inherited, Lineage, LineageError, SnapshotStore, load_model_file, snapshot_name


def tiny(alpha: float, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return powerpropify(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), alpha)


def masked_tiny(alpha: float) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    model = tiny(alpha)
    kept = {"0.weight": torch.rand(4, 3) > 0.5, "2.weight": torch.rand(2, 4) > 0.3}
    masks.install(model, masks.Mask(kept))
    return model, kept


def test_snapshots_are_taken_at_the_declared_steps_only_and_missing_counts_up_to_a_step(tmp_path):
    model = tiny(2.0)
    store = SnapshotStore(tmp_path / "ck", [5, 0, 5, 2], "abc")
    assert store.steps == [0, 2, 5]
    assert store.missing(5) == [0, 2, 5] and store.missing(2) == [0, 2] and store.missing(1) == [0]
    for step in range(7):
        store.take_if_due(model, step)
    assert sorted(path.name for path in (tmp_path / "ck").iterdir()) == [snapshot_name(s) for s in (0, 2, 5)]
    assert snapshot_name(2) == "step_00000002.pt"
    assert store.missing(5) == []
    (tmp_path / "ck" / snapshot_name(2)).unlink()
    assert store.missing(5) == [2] and store.missing(1) == []
    payload = load_model_file(tmp_path / "ck" / snapshot_name(5))
    assert (payload["step"], payload["alpha"], payload["spec_hash"]) == (5, 2.0, "abc")
    assert all(torch.equal(payload["state_dict"][key], value) for key, value in model.state_dict().items())


def test_publish_copies_every_snapshot_with_its_index_and_refuses_a_link_or_a_file(tmp_path):
    model = tiny(1.0)
    store = SnapshotStore(tmp_path / "ck", [0, 3], "h")
    for step in (0, 3):
        store.take_if_due(model, step)
    store.publish(tmp_path / "run")
    published = tmp_path / "run" / "snapshots"
    for step in (0, 3):
        assert (published / snapshot_name(step)).read_bytes() == (tmp_path / "ck" / snapshot_name(step)).read_bytes()
    assert json.loads((published / INDEX).read_text()) == {"steps": [0, 3], "spec_hash": "h"}
    store.publish(tmp_path / "run")  # again (a rerun into the same folder): replaced, not refused
    assert sorted(path.name for path in published.iterdir()) == [INDEX, snapshot_name(0), snapshot_name(3)]
    SnapshotStore(tmp_path / "none", [], "e").publish(tmp_path / "empty")
    assert json.loads((tmp_path / "empty" / "snapshots" / INDEX).read_text()) == {"steps": [], "spec_hash": "e"}
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "snapshots").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "filed").mkdir()
    (tmp_path / "filed" / "snapshots").write_text("x")
    for run_dir in ("linked", "filed"):
        with pytest.raises(LineageError, match="not a folder of the run directory"):
            store.publish(tmp_path / run_dir)
    assert not (tmp_path / "elsewhere").exists()


def test_a_parent_file_is_read_back_with_its_alpha_step_and_mask(tmp_path):
    model, kept = masked_tiny(2.0)
    torch.save({"alpha": 2.0, "spec_hash": "p", "state_dict": model.state_dict()}, tmp_path / "model.pt")
    parent = Inherited.load(tmp_path / "model.pt", "final", "p")
    assert (parent.alpha, parent.step, parent.path) == (2.0, "final", str(tmp_path / "model.pt"))
    assert parent.mask() == masks.Mask(kept)
    for name, layer in weight_layers(model).items():  # θ = sign(φ)|φ|^α, computed here by hand
        phi = layer.weight.detach()
        assert torch.allclose(parent.thetas([name])[name], phi.sign() * phi.abs() ** 2, rtol=1e-6, atol=0)
    assert Inherited.load(tmp_path / "model.pt", 3).step == 3  # no spec hash asked: no check
    with pytest.raises(LineageError, match="was written for spec 'p', but this cell inherits from spec 'q'"):
        Inherited.load(tmp_path / "model.pt", "final", "q")
    # a checkpoint keeps α in its spec
    torch.save({"spec": {"alpha": 3.0}, "state_dict": model.state_dict()}, tmp_path / "checkpoint.pt")
    assert Inherited.load(tmp_path / "checkpoint.pt", 0).alpha == 3.0


def test_a_dense_parent_has_no_mask_and_a_mask_from_it_is_an_error(tmp_path):
    dense = tiny(1.0)
    parent = Inherited(dense.state_dict(), 1.0, "final", "dense.pt")
    assert parent.mask() is None
    assert Lineage().mask is None and Lineage(init=parent).mask is None
    with pytest.raises(ValueError, match=r"dense\.pt holds no mask"):
        _ = Lineage(mask_source=parent).mask
    model, kept = masked_tiny(1.0)
    assert Lineage(mask_source=Inherited(model.state_dict(), 1.0, "final")).mask == masks.Mask(kept)


def test_init_from_a_parent_copies_phi_bitwise_at_its_alpha_and_keeps_theta_at_another(tmp_path):
    parent_model, _ = masked_tiny(2.0)
    parent = Inherited(parent_model.state_dict(), 2.0, "final")
    same = tiny(2.0, seed=1)
    Lineage(init=parent).apply_init(same, 2.0)
    for key, value in same.state_dict().items():
        if not key.endswith(("weight_mask", "weight_grad_mask")):
            assert torch.equal(value, parent_model.state_dict()[key]), key
    assert masks.forward_mask(same) is None  # the parent's masks are not inherited by init_from
    other = tiny(1.0, seed=1)
    Lineage(init=parent).apply_init(other, 1.0)
    for name, layer in weight_layers(other).items():
        phi = parent_model.state_dict()[name]
        assert torch.allclose(layer.weight.detach(), phi.sign() * phi.abs() ** 2, rtol=1e-6, atol=1e-7), name
    untouched = tiny(2.0, seed=1)
    before = {key: value.clone() for key, value in untouched.state_dict().items()}
    Lineage().apply_init(untouched, 2.0)
    assert all(torch.equal(value, before[key]) for key, value in untouched.state_dict().items())
    wider = powerpropify(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Linear(2, 2)), 2.0)
    with pytest.raises(ValueError, match="does not match this cell's"):
        parent.load_weights_into(wider, 2.0)
    narrower = powerpropify(nn.Sequential(nn.Linear(3, 4)), 2.0)
    with pytest.raises(ValueError, match="does not match this cell's"):
        parent.load_weights_into(narrower, 2.0)


def test_a_file_that_is_no_model_file_is_refused_in_one_line_naming_it(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a zip, not a pickle")
    with pytest.raises(LineageError) as error:
        load_model_file(path)
    assert str(error.value).startswith(f"{path}: not a model file the harness wrote, refused (")
    assert "\n" not in str(error.value)
    torch.save({"a": fractions.Fraction(1, 3)}, path)  # an object weights_only refuses: torch's many-line reason
    with pytest.raises(Exception) as reason:
        torch.load(path, weights_only=True)
    first, *rest = str(reason.value).strip().splitlines()
    assert rest  # a reason of several lines: the message keeps its first
    with pytest.raises(LineageError) as error:
        load_model_file(path)
    assert str(error.value) == f"{path}: not a model file the harness wrote, refused (UnpicklingError: {first})"
