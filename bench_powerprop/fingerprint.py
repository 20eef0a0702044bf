"""The numerics fingerprint: a small fixed computation over the default run's kernels, hashed per tensor.

``python -m bench_powerprop.fingerprint [--mode portable|native] [--check FILE | --write FILE]`` trains the
default's MLP (LeNet-300-100, Powerprop α = 2, plain SGD, on the bundled 8×8 digits through the package's
data pipeline) and LeNet-5 (on mnist5k's 28×28 images) for a fixed number of steps, forward, backward
and optimizer; a small conv + batch-norm net with Adam; then scores the trained MLP (magnitude, SNIP,
SynFlow) and prunes it (``topk``, ``kthvalue``). Every result tensor's SHA-256 is the fingerprint.
``--check FILE`` compares it with a committed fingerprint (``tests/numerics/fingerprint.json``) and
names the hardware and the first differing tensor. The mode is applied before torch is imported
(``bench_powerprop.numerics``), so run it as its own process. docs/numerics.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from bench_powerprop import numerics

MLP_STEPS = 200
LENET_STEPS = 30
BATCHNORM_STEPS = 20
BATCH = 60
THREADS = 1


def digest(tensor) -> str:
    return hashlib.sha256(tensor.detach().contiguous().cpu().numpy().tobytes()).hexdigest()


def _train(model, x, y, steps: int, optimizer, seed: int) -> list[float]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        index = torch.randint(len(y), (BATCH,), generator=generator)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return losses


def _record(out: dict, prefix: str, model, losses) -> None:
    import torch

    out[f"{prefix}.losses"] = digest(torch.stack(losses))
    for name, tensor in model.state_dict().items():
        out[f"{prefix}.{name}"] = digest(tensor)


def compute() -> dict[str, str]:
    """``{tensor name: SHA-256 of its bytes}`` in a fixed order (the first differing one is the first reported)."""
    import torch

    from bench_powerprop import masks
    from bench_powerprop.data.tasks import build_task
    from bench_powerprop.models import build_model
    from bench_powerprop.powerprop import effective_weights, powerpropify
    from bench_powerprop.scoring.base import ScoringInputs, score
    from bench_powerprop.training.optimizers import make_optimizer
    from bench_powerprop.training.options import train_options

    out: dict[str, str] = {}
    digits = build_task({"name": "digits", "split_seed": 0, "val_fraction": 0.1, "test_fraction": 0.2}).splits
    out["data.digits.x_train"] = digest(digits.x_train)
    torch.manual_seed(0)
    mlp = powerpropify(build_model({"name": "mlp", "hidden": [300, 100]}, (64,), 10), 2.0)
    sgd = make_optimizer(mlp, train_options({"steps": MLP_STEPS, "batch_size": BATCH, "lr": 0.1}))
    _record(out, "mlp", mlp, _train(mlp, digits.x_train, digits.y_train, MLP_STEPS, sgd, seed=1))
    with torch.no_grad():
        out["mlp.test_logits"] = digest(mlp(digits.x_test))

    mnist = build_task({"name": "mnist5k", "split_seed": 0, "val_fraction": 0.1, "test_fraction": 0.2}).splits
    out["data.mnist5k.x_train"] = digest(mnist.x_train)
    torch.manual_seed(0)
    lenet = powerpropify(build_model({"name": "lenet5"}, (784,), 10), 2.0)
    sgd = make_optimizer(lenet, train_options({"steps": LENET_STEPS, "batch_size": BATCH, "lr": 0.1}))
    _record(out, "lenet5", lenet, _train(lenet, mnist.x_train, mnist.y_train, LENET_STEPS, sgd, seed=2))

    torch.manual_seed(0)
    nn = torch.nn
    batchnorm = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 14 * 14, 10))
    adam = make_optimizer(batchnorm, train_options({"steps": BATCHNORM_STEPS, "batch_size": BATCH, "lr": 1e-3,
                                                    "optimizer": "adam"}))
    _record(out, "conv_bn_adam", batchnorm, _train(batchnorm, mnist.x_train, mnist.y_train, BATCHNORM_STEPS, adam, seed=3))

    batches = [(digits.x_train[:BATCH], digits.y_train[:BATCH])]
    inputs = ScoringInputs(batches=batches, loss_fn=torch.nn.functional.cross_entropy)
    for scorer in ("magnitude", "snip", "synflow"):
        scores = score(scorer, mlp, inputs)
        for name, tensor in scores.items():
            out[f"prune.{scorer}.{name}"] = digest(tensor)
        for rounding in ("round", "synaptic_flow"):
            mask = masks.prune(scores, 0.05, "layerwise", 2.0, rounding)
            out[f"prune.{scorer}.mask_{rounding}"] = digest(torch.cat([m.reshape(-1) for m in mask.values()]))
    out["prune.sort"] = digest(torch.sort(torch.cat([t.reshape(-1) for t in effective_weights(mlp).values()])).values)
    return out


def hardware() -> dict:
    """The CPU this ran on, as the fingerprint file records it."""
    from bench_powerprop.hardware import cpu_summary

    return cpu_summary()


def first_difference(expected: dict[str, str], actual: dict[str, str]) -> str | None:
    for name, value in expected.items():
        if actual.get(name) != value:
            return name
    extra = [name for name in actual if name not in expected]
    return extra[0] if extra else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench_powerprop.fingerprint", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=numerics.MODES, default="portable")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", type=Path, help="compare with this committed fingerprint file")
    action.add_argument("--write", type=Path, help="write the fingerprint (and this CPU as confirmed) to this file")
    parser.add_argument("--label", default="", help="with --write/--confirm: how this CPU was reached (e.g. qemu -cpu Haswell)")
    parser.add_argument("--confirm", type=Path, help="check against this file and, when equal, add this CPU to its list")
    args = parser.parse_args(argv)
    numerics.apply(args.mode, THREADS)
    actual = compute()
    cpu = {**hardware(), "via": args.label or "no emulator"}
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(json.dumps({"mode": args.mode, "confirmed_on": [cpu], "tensors": actual}, indent=1) + "\n")
        print(f"wrote {len(actual)} tensor hashes to {args.write}")
        return 0
    target = args.check or args.confirm
    if target is None:
        print(json.dumps({"cpu": cpu, "tensors": actual}, indent=1))
        return 0
    recorded = json.loads(target.read_text())
    differing = first_difference(recorded["tensors"], actual)
    if differing:
        print(f"numerics fingerprint ({args.mode}) differs from {target} on {describe(cpu)}: first differing tensor "
              f"{differing} (confirmed on: {'; '.join(describe(c) for c in recorded['confirmed_on'])})", file=sys.stderr)
        return 1
    if args.confirm and cpu not in recorded["confirmed_on"]:
        recorded["confirmed_on"].append(cpu)
        target.write_text(json.dumps(recorded, indent=1) + "\n")
    print(f"numerics fingerprint ({args.mode}): all {len(actual)} tensors equal {target} on {describe(cpu)}")
    return 0


def describe(cpu: dict) -> str:
    return f"{cpu['vendor']} {cpu['model']} (torch capability {cpu['capability']}, {cpu['via']})"


if __name__ == "__main__":
    sys.exit(main())
