"""The ``pai`` method (prune at initialisation, then train the fixed mask) and the PAI experiment's config."""

import re

import pandas as pd
import pytest
import torch
from torch import nn

from bench_powerprop import masks
from bench_powerprop.cells import CELL_PATH_PATTERN
from bench_powerprop.config import ConfigError, load_yaml, validate_config
from bench_powerprop.data.tasks import build_task
from bench_powerprop.masks import kept_count
from bench_powerprop.plan import Plan
from bench_powerprop.powerprop import weight_layers
from bench_powerprop.reporting.tables import nearest_published
from bench_powerprop.scoring import ScoringInputs, scorer
from bench_powerprop.training.context import scoring_seed
from bench_powerprop.training.trainer import Trainer, build_cell

from helpers import REPO, digits_spec


@pytest.mark.parametrize("name", ["snip", "grasp", "force", "synflow"])
def test_pai_mask_is_the_scorers_choice_on_the_scoring_stream(name, tmp_path):
    options = {"scorer": name, "scoring_batches": 2, "scoring_batch_size": 50, "scope": "layerwise", "last_layer_keep_factor": 2.0,
               "scorer_options": {"rounds": 3} if name in ("force", "synflow") else {}}
    spec = digits_spec("pai", alpha=2.0, sparsity=0.95, steps=5, options=options)
    trainer = Trainer(spec, tmp_path, progress=False)
    installed = masks.forward_mask(trainer.model)

    model, tasks, _ = build_cell(spec)  # the same initial model, scored independently on the same scoring stream
    stream = tasks[0].train_batches(50, scoring_seed(spec["seed"]))
    inputs = ScoringInputs(batches=[stream.next_batch() for _ in range(2)], loss_fn=nn.CrossEntropyLoss())
    expected = scorer(name, options["scorer_options"]).select(model, inputs, 0.05, "layerwise", 2.0)
    assert installed == expected
    names = list(installed)
    for layer, count in installed.layer_counts().items():
        assert count == kept_count(installed[layer].numel(), 0.1 if layer == names[-1] else 0.05)


@pytest.mark.parametrize("name, reference_count", [("snip", lambda n, d: n - int((1.0 - d) * n)),
                                                   ("synflow", lambda n, d: n - int((1.0 - d) * n))])
def test_pai_default_scope_ranks_every_layer_and_count_reference_keeps_the_references_count(name, reference_count, tmp_path):
    options = {"scorer": name, "scoring_batch_size": 50, "count": "reference",
               "scorer_options": {"rounds": 3} if name == "synflow" else {}}
    spec = digits_spec("pai", alpha=1.0, sparsity=0.95, steps=5, options=options)
    installed = masks.forward_mask(Trainer(spec, tmp_path, progress=False).model)
    model, tasks, _ = build_cell(spec)
    inputs = ScoringInputs(batches=[tasks[0].train_batches(50, scoring_seed(spec["seed"])).next_batch()], loss_fn=nn.CrossEntropyLoss())
    assert installed == scorer(name, options["scorer_options"]).select(model, inputs, 0.05, "global", 1.0, "reference")
    assert installed.count() == reference_count(installed.numel(), 0.05)  # Synaptic-Flow's count over every layer together


def pai_start(tmp_path, **options):
    spec = digits_spec("pai", alpha=2.0, sparsity=0.9, steps=5, options={"scorer": "snip", **options})
    trainer = Trainer(spec, tmp_path, progress=False)
    return masks.forward_mask(trainer.model), {name: layer.weight.detach().clone() for name, layer in weight_layers(trainer.model).items()}


def test_within_layer_shuffle_and_reinit_controls_keep_the_scorers_per_layer_counts(tmp_path):
    """Frankle et al. 2021 §5: the same per-layer counts at shuffled positions; then, also, fresh weights."""
    scored, scored_phi = pai_start(tmp_path / "snip")
    shuffled, shuffled_phi = pai_start(tmp_path / "shuffled", shuffle="within_layer")
    reinit, reinit_phi = pai_start(tmp_path / "reinit", shuffle="within_layer", reinit=True)
    again, _ = pai_start(tmp_path / "again", shuffle="within_layer")
    model, _, _ = build_cell(digits_spec("pai", alpha=2.0, sparsity=0.9))
    initial = {name: layer.weight.detach() for name, layer in weight_layers(model).items()}
    assert shuffled.layer_counts() == scored.layer_counts() == reinit.layer_counts()
    assert shuffled == again == reinit  # the method's seeded generator draws the positions
    for name in scored:
        assert not torch.equal(shuffled[name], scored[name]), name  # other positions in every layer
        kept = shuffled[name]
        assert torch.equal(shuffled_phi[name][kept], initial[name][kept]), name  # shuffle alone keeps the initial weights
        assert not torch.equal(reinit_phi[name][kept], initial[name][kept]), name  # reinit draws new ones ...
        assert reinit_phi[name][kept].std().item() == pytest.approx(initial[name].std().item(), rel=0.3)  # ... alike
        assert (reinit_phi[name][~kept] == 0).all() and (shuffled_phi[name][~kept] == 0).all()
    assert torch.equal(scored_phi[name][scored[name]], initial[name][scored[name]])


def test_pai_keeps_the_training_batches_of_every_other_method(tmp_path):
    """Scoring draws from its own stream: a pai cell and a static cell see the same training batches."""
    seen = {}
    for method, options in (("pai", {"scorer": "snip", "scoring_batches": 3}), ("static", {})):
        trainer = Trainer(digits_spec(method, alpha=1.0, sparsity=0.9, steps=5, options=options), tmp_path / method, progress=False)
        seen[method] = [trainer.batches_of(0).next_batch()[1] for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(seen["pai"], seen["static"]))


def default_config():
    config = load_yaml(REPO / "configs" / "default.yaml")
    config["active_experiments"] = ["pai_digits", "sparse_digits"]
    return config


@pytest.mark.parametrize(("change", "message"), [
    (lambda e: e["variants"]["pai"]["snip"].update(scorer="nope"), r"pai_digits.variants.pai.snip.scorer: unknown scorer 'nope'"),
    (lambda e: e["methods"]["pai"].update(scorer_options={"temprature": 1}),
     r"pai_digits.variants.pai.\w+.scorer_options.temprature: unknown option"),
    (lambda e: e["variants"]["pai"]["synflow"].update(scorer_options={"rounds": 0}),
     r"pai_digits.variants.pai.synflow.scorer_options.rounds: must be an integer >= 1"),
    (lambda e: e["methods"]["pai"].update(last_layer_keep_factor=2.0),
     r"pai_digits.variants.pai.\w+.last_layer_keep_factor: scope 'global' ranks the output layer with every other layer"),
    (lambda e: e["methods"]["pai"].update(count="nearest"), r"pai_digits.variants.pai.\w+.count: must be one of \['exact', 'reference'\]"),
    (lambda e: e["methods"]["pai"].update(scope="hidden"), r"pai_digits.variants.pai.\w+.scope: must be one of"),
    (lambda e: e["variants"]["pai"]["snip"].update(scorer="obd", count="reference"),
     r"pai_digits.variants.pai.snip.count: scorer 'obd' has no reference code"),
    (lambda e: e["train"].update(steps=999), r"pai_digits.reference.experiment: 'sparse_digits' has a different train section"),
    (lambda e: e["reference"].update(experiment="nope"), r"pai_digits.reference.experiment: 'nope' is not another experiment"),
])
def test_bad_pai_settings_fail_before_any_job(change, message):
    config = default_config()
    change(config["experiments"]["pai_digits"])
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_scorer_defaults_are_part_of_the_hashed_spec():
    config = default_config()  # FORCE is declared there but not in the default grid
    config["experiments"]["pai_digits"]["grid"].append({"method": ["pai"], "variant": ["force"], "alpha": [1],
                                                        "sparsity": [0.98], "seed": [0]})
    plan = Plan(config)
    synflow = next(cell for cell in plan.cells if cell.method == "pai" and cell.variant == "synflow")
    assert plan.spec(synflow)["method_options"]["scorer_options"] == {"rounds": 100, "schedule": "exponential"}
    force = next(cell for cell in plan.cells if cell.method == "pai" and cell.variant == "force")
    assert plan.spec(force)["method_options"]["scorer_options"] == {"rounds": 10, "schedule": "exponential", "mode": "train"}
    assert plan.spec(force)["method_options"]["scope"] == "global" and plan.spec(force)["method_options"]["count"] == "exact"
    assert "level" not in plan.spec(synflow)  # an unset optional axis never enters a spec (old hashes stay valid)


def test_the_wildcard_matches_paths_with_and_without_a_level():
    pattern = re.compile(CELL_PATH_PATTERN)
    base = "method~pai/variant~snip/alpha~2/sparsity~0.9/seed~0"
    folder = "/h~0123456789abcdef"  # the run folder: h~<spec hash>
    assert pattern.fullmatch(base + folder) and pattern.fullmatch(base + "/level~12" + folder)
    assert not pattern.fullmatch(base) and not pattern.fullmatch(base + "/level~x" + folder)
    assert not pattern.fullmatch(base + folder + "/metrics.json") and not pattern.fullmatch(base + "/h~0123")


def test_published_context_is_taken_at_the_nearest_published_sparsity():
    published = pd.DataFrame({
        "paper": ["P"] * 4, "dataset": ["cifar10"] * 4, "model": ["vgg"] * 4, "method": ["snip"] * 4, "variant": ["default"] * 4,
        "alpha": [1.0] * 4, "sparsity": [0.5, 0.9, 0.982, 0.999], "metric": ["acc"] * 4, "value": [1.0, 2.0, 3.0, 4.0],
        "source": ["s"] * 4})
    chosen = nearest_published(published, ["snip"], "digits", "mlp", [0.9, 0.98])
    assert chosen["sparsity"].tolist() == [0.9, 0.982]
    assert nearest_published(published, ["snip"], "cifar10", "vgg", [0.9]).empty  # the same setting is not "context"


def test_mnist5k_is_a_registered_dataset_with_a_split():
    assert build_task({"name": "mnist5k", "val_fraction": 0.2, "test_fraction": 0.2}).splits.y_val.numel() == 1000
