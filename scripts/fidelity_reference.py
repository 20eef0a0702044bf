"""Compare this harness's pruning-at-initialisation masks with the reference codes' own, run unchanged.

    python scripts/fidelity_reference.py --synaptic-flow /tmp/ref/synflow --force /tmp/ref/force

The two directories are checkouts of github.com/ganguli-lab/Synaptic-Flow and github.com/naver/force
(their code is imported from there, never copied into this repository). One network (the pai_digits
LeNet-300-100 MLP at α = 1, seed 0), one scoring batch (the first 100 training digits), the same weights
given to every implementation. Prints, per scorer and kept fraction: the reference's per-layer counts,
ours at the harness defaults (scope global, count exact) and with count: reference, the IoU of ours
with the reference's per layer, and whether the masks are equal. docs/fidelity.md records a run.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from bench_powerprop.data.tasks import build_task
from bench_powerprop.masks import Mask
from bench_powerprop.models import MODELS
from bench_powerprop.scoring import ScoringInputs, scorer

ROUNDS = {"synflow": 100, "force": 10}
KEEPS = (0.1, 0.02)


def digits_mlp_and_batch():
    torch.manual_seed(0)
    splits = build_task({"name": "digits", "split_seed": 0}).splits
    model = MODELS.get("mlp")({"name": "mlp", "hidden": [300, 100]}, (splits.num_features,), splits.num_classes)
    return model, (splits.x_train[:100], splits.y_train[:100])


def with_batch_norm(model):
    """The same MLP with a BatchNorm1d after each hidden Linear layer (where train and eval mode score differently)."""
    layers = []
    for module in copy.deepcopy(model):
        layers.append(module)
        if isinstance(module, nn.Linear) and module.out_features != 10:
            layers.append(nn.BatchNorm1d(module.out_features))
    return nn.Sequential(*layers)


def ours(model, batch, name, keep, scope="global", count="exact", mode=None):
    options = {"rounds": ROUNDS[name]} if name in ROUNDS else {}
    if mode is not None:
        options["mode"] = mode
    inputs = ScoringInputs(batches=[batch], loss_fn=F.cross_entropy, generator=torch.Generator().manual_seed(0))
    return scorer(name, options).select(copy.deepcopy(model), inputs, keep, scope, 1.0, count)


def synaptic_flow(root: Path, model, batch, name, keep, train_mode=False):
    sys.path.insert(0, str(root))
    from Layers import layers
    from prune import prune_loop
    from Pruners import pruners
    from Utils import generator

    reference = nn.Sequential(*[layers.Linear(m.in_features, m.out_features) if isinstance(m, nn.Linear) else m
                                for m in copy.deepcopy(model)])
    reference.load_state_dict(model.state_dict(), strict=False)
    pruner_class = {"snip": pruners.SNIP, "grasp": pruners.GraSP, "synflow": pruners.SynFlow, "magnitude": pruners.Mag}[name]
    pruner = pruner_class(generator.masked_parameters(reference, False, False, False))
    prune_loop(reference, nn.CrossEntropyLoss(), pruner, [batch], torch.device("cpu"), keep, "exponential", "global",
               ROUNDS.get(name, 1), train_mode=train_mode)
    names = [f"{index}.weight" for index, m in enumerate(model) if isinstance(m, nn.Linear)]
    return Mask({layer: mask for layer, (mask, _) in zip(names, pruner.masked_parameters)})


def force(root: Path, model, batch, keep):
    sys.path.insert(0, str(root))
    from pruning.pruning_algos import iterative_pruning

    network = nn.Sequential(*copy.deepcopy(model), nn.LogSoftmax(dim=1))  # FORCE's loss is nll_loss on log-probabilities
    masks = iterative_pruning(network, [batch], torch.device("cpu"), keep, prune_method=3, num_steps=ROUNDS["force"],
                              mode="exp", num_batches=1)
    names = [f"{index}.weight" for index, m in enumerate(model) if isinstance(m, nn.Linear)]
    return Mask(dict(zip(names, masks)))


def iou(a: Mask, b: Mask) -> dict[str, str]:
    """Intersection over union per layer ("empty" where both keep nothing of the layer)."""
    return {name: f"{float((a[name] & b[name]).sum() / union):.4f}" if (union := (a[name] | b[name]).sum()) else "empty"
            for name in a}


def commit(root: Path) -> str:
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synaptic-flow", type=Path, required=True)
    parser.add_argument("--force", type=Path)
    args = parser.parse_args()
    print(f"Synaptic-Flow {commit(args.synaptic_flow)}" + (f", FORCE {commit(args.force)}" if args.force else ""))
    model, batch = digits_mlp_and_batch()
    for name in ("magnitude", "snip", "grasp", "synflow", "force"):
        if name == "force" and not args.force:
            continue
        for keep in KEEPS:
            reference = reference_mask(args, model, batch, name, keep)
            compare(f"{name} keep {keep}", reference, {
                "global, exact": ours(model, batch, name, keep),
                "global, reference count": ours(model, batch, name, keep, count="reference"),
                "global_separate_output (old default)": ours(model, batch, name, keep, scope="global_separate_output")})
    normed = with_batch_norm(model)  # train mode (FORCE's and GraSP's scripts) against eval mode
    for name in ("grasp", "force") if args.force else ("grasp",):
        for keep in KEEPS:
            reference = reference_mask(args, normed, batch, name, keep, train_mode=True)
            compare(f"{name} with batch norm, reference in train mode, keep {keep}", reference, {
                "train mode (default), reference count": ours(normed, batch, name, keep, count="reference"),
                "eval mode, reference count": ours(normed, batch, name, keep, count="reference", mode="eval")})


def reference_mask(args, model, batch, name, keep, train_mode=False):
    if name == "force":  # FORCE's network is in train mode, as the one its script builds
        return force(args.force, model, batch, keep)
    return synaptic_flow(args.synaptic_flow, model, batch, name, keep, train_mode)


def compare(title, reference, rows):
    print(f"\n{title}: reference counts {reference.layer_counts()} (total {reference.count()})")
    for label, mask in rows.items():
        print(f"  {label:38s} counts {mask.layer_counts()} IoU {' '.join(iou(mask, reference).values())}  equal: {mask == reference}")

if __name__ == "__main__":
    main()
