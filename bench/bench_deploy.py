"""What the pruned LeNet-300-100 of the one-shot experiment costs to run, deployed: sparse kernels against dense.

Trains (or loads, ``--model``) the default run's ``oneshot_mnist`` cell (LeNet-300-100 on mnist5k, α = 1,
seed 0), prunes it one-shot as that experiment does (layerwise magnitude of θ, output layer at 2× the kept
fraction) to 90 % and 98 % sparsity, deploys it (``bench_powerprop.deploy``: torch.sparse CSR, channel-pruned
dense layers) and times every form against the dense model in this one process, one thread, at batch 1, 64 and
1,024 (min and median of ``--repeats``). Goal: the 98 % network answers a batch of 64 at least 5× faster than its
dense form, end to end. Where sparse loses is printed as plainly as where it wins.

    .venv/bin/python bench/bench_deploy.py                  # writes bench/results/deploy_<hostname>.txt
    .venv/bin/python bench/bench_deploy.py --label cpu2-amd-epyc --model results/oneshot_mnist/runs/<cell>/model.pt
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from _results import save

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GOAL = 5.0
LEVELS = (0.9, 0.98)


def trained_cell(model_path: Path | None, steps: int):
    """(model, spec): the given model.pt, or the default config's oneshot_mnist α = 1 seed-0 cell trained now."""
    from omegaconf import OmegaConf

    from bench_powerprop.cells import make_cell
    from bench_powerprop.plan import Plan
    from bench_powerprop.training.checkpointing import load_trained_model
    from bench_powerprop.training.trainer import train_cell

    if model_path is None:
        config = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "default.yaml"))
        config["experiments"]["oneshot_mnist"]["train"]["steps"] = steps
        config["active_experiments"] = ["oneshot_mnist"]
        spec = Plan(config).spec(make_cell("oneshot_mnist", method="dense", alpha=1.0, sparsity=0.0, seed=0))
        scratch = Path(tempfile.mkdtemp(prefix="bench_deploy_"))
        train_cell(spec, scratch / "run", scratch / "ckpt", progress=False)
        model_path = scratch / "run" / "model.pt"
    return load_trained_model(model_path)


def pruned(model, spec, sparsity: float, prune_cfg: dict):
    from bench_powerprop import deploy, masks
    from bench_powerprop.data.tasks import build_task
    from bench_powerprop.scoring import score

    mask = masks.prune(score("magnitude", model), 1.0 - sparsity, prune_cfg["scope"], prune_cfg["last_layer_keep_factor"])
    plain = deploy.plain_model(model, spec)
    for name, layer in masks.weight_layers(plain).items():
        layer.weight.data.mul_(mask[name])
    return plain, build_task(spec["data"]).accuracy(plain, "test"), masks.masked_fraction(plain, mask)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default=platform.node() or "unknown", help="machine label in the output file name")
    parser.add_argument("--model", type=Path, default=None, help="a trained oneshot_mnist cell's model.pt (default: train one)")
    parser.add_argument("--steps", type=int, default=2000, help="training steps when no --model is given (the default run's)")
    parser.add_argument("--repeats", type=int, default=21, help="timed repeats per form and batch size (forms take turns)")
    args = parser.parse_args()
    import torch
    from omegaconf import OmegaConf

    from bench_powerprop import deploy

    prune_cfg = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "default.yaml"))["experiments"]["oneshot_mnist"]["prune"]
    model, spec = trained_cell(args.model, args.steps)
    load_before = os.getloadavg()
    lines = [
        f"# deployment of the one-shot LeNet-300-100 ({datetime.now(UTC).isoformat(timespec='seconds')}, host "
        f"{platform.node()}, {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, load before "
        f"{load_before[0]:.2f})",
        "# the machine is SHARED and was loaded while this ran (other jobs on its 2 cores): absolute times are noisy;",
        "# every ratio compares forms timed in turn within each repeat in this one process, 1 thread (median and min of repeats).",
        f"# model: oneshot_mnist α = 1 seed 0 ({spec['train']['steps']} steps), pruned one-shot layerwise by |θ|, "
        "output layer at 2× the kept fraction",
        f"# 2:4 semi-structured: {deploy.semi_structured_support() or 'available'}",
        "",
        f"{'sparsity':>8} {'test acc':>8} {'form':<27} {'batch':>5} {'stored KiB':>10} {'MACs/ex':>8} "
        f"{'min ms':>9} {'median ms':>9} {'x dense (median)':>16} {'x dense (min)':>13}",
    ]
    checks = []
    for sparsity in LEVELS:
        plain, accuracy, actual = pruned(copy.deepcopy(model), spec, sparsity, prune_cfg)
        for row in deploy.measure(plain, deploy.mlp_layers(plain)[0].in_features, repeats=args.repeats):
            lines.append(f"{actual:>8.3f} {accuracy:>8.4f} {row['form']:<27} {row['batch_size']:>5} "
                         f"{row['stored_bytes'] / 1024:>10.1f} {row['macs_per_example']:>8} {row['min_ms']:>9.4f} "
                         f"{row['median_ms']:>9.4f} {row['speedup_vs_dense']:>15.2f}x {row['speedup_vs_dense_min']:>12.2f}x"
                         + ("  <- sparse slower than dense" if row["form"] != deploy.SIMULATED
                            and row["speedup_vs_dense_min"] < 1 else ""))
            if sparsity == 0.98 and row["form"] == "csr" and row["batch_size"] == 64:
                ratio = row["speedup_vs_dense_min"]
                checks.append(f"98 % LeNet-300-100, CSR vs dense, batch 64: {ratio:.2f}x faster by minimum (the estimate "
                              f"least disturbed by other jobs), {row['speedup_vs_dense']:.2f}x by median, end to end; "
                              f"goal >= {GOAL:g}x: {'PASS' if ratio >= GOAL else 'FAIL'}")
    lines += ["", *checks, f"# load after: {os.getloadavg()[0]:.2f}"]
    return save("deploy", args.label, lines)


if __name__ == "__main__":
    sys.exit(main())
