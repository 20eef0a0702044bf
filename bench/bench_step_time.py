"""Training-step time of Powerprop and masks, against dense and against torch.nn.utils equivalents: the kernel.

The isolated kernel, not what a run pays per step: one process, one fixed batch per workload, fixed masks,
no method hooks, mask updates or FLOP counting (``bench_trainer_step.py`` times the trainer's own step per
method). A *step* is forward + cross-entropy + zero_grad +
backward + SGD step, as the trainer takes it in one process: the harness's Powerprop variants
compute θ of α = 2 layers outside autograd (``powerprop.ThetaLeaves``) unless named "θ in
autograd" (the DDP path) or "compiled" (``train.compile``), and its masked variants call
``masks.enforce_layers`` after the step.
Variants are timed in interleaved rounds (every round times every variant once, in rotating
order) so that drifting machine load hits all of them alike; the reported time is the median
over rounds of the mean step time within a round (``time.perf_counter``, CUDA synchronised).

    .venv/bin/python bench/bench_step_time.py                 # writes bench/results/step_time_<hostname>.txt
    .venv/bin/python bench/bench_step_time.py --label mybox   # ... step_time_mybox.txt
    .venv/bin/python bench/bench_step_time.py --quick         # a smoke run (seconds), not for the record
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# --compile reports cold compile times: inductor's on-disk cache starts empty in every run
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_step_time_inductor_"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils import parametrize, prune  # noqa: E402

from bench_powerprop import masks as mask_ops  # noqa: E402
from bench_powerprop.io import write_text_atomic  # noqa: E402
from bench_powerprop.models import build_model  # noqa: E402
from bench_powerprop.powerprop import (  # noqa: E402
    ThetaLeaves,
    compile_transforms,
    phi_from_theta,
    powerprop_layers,
    powerpropify,
    weight_layers,
)
from bench_powerprop.scoring import score  # noqa: E402

ALPHA = 2.0
KEEP = 0.1  # 90% of every layer's weights masked (output layer: 80%, the harness's default factor 2)
LEARNING_RATE = 1e-3  # small, so thousands of timed steps stay finite (NaNs/denormals would distort CPU time)


# -- variants ----------------------------------------------------------------------------
class PowerParametrization(nn.Module):
    """torch.nn.utils.parametrize version of Powerprop: θ = φ|φ|^(α−1) (· mask)."""

    def __init__(self, alpha: float, mask: torch.Tensor | None = None):
        super().__init__()
        self.alpha = alpha
        self.register_buffer("mask", mask)

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        theta = phi * phi.abs().pow(self.alpha - 1)
        return theta if self.mask is None else theta * self.mask

    def right_inverse(self, theta: torch.Tensor) -> torch.Tensor:
        return phi_from_theta(theta, self.alpha)


NO_CONTEXT = contextlib.nullcontext()


def ours_dense(model, masks):
    return model, None, NO_CONTEXT


def ours_powerprop(model, masks):
    """As the trainer runs it in one process: θ of the α = 2 layers outside autograd (``ThetaLeaves``)."""
    model = powerpropify(model, ALPHA)
    return model, None, ThetaLeaves(powerprop_layers(model))


def ours_powerprop_in_autograd(model, masks):
    """θ inside autograd (``_SquarePowerWeight``): the trainer's path under DDP."""
    return powerpropify(model, ALPHA), None, NO_CONTEXT


def ours_masks(model, masks):
    mask_ops.install(model, mask_ops.Mask(masks))
    return model, enforcer(model), NO_CONTEXT


def ours_powerprop_masks(model, masks):
    model, _, leaves = ours_powerprop(model, masks)
    mask_ops.install(model, mask_ops.Mask(masks))
    return model, enforcer(model), leaves


def ours_powerprop_masks_in_autograd(model, masks):
    model, _, _ = ours_powerprop_masks(model, masks)
    return model, enforcer(model), NO_CONTEXT


def ours_powerprop_masks_compiled(model, masks):
    model, after_step, _ = ours_powerprop_masks(model, masks)
    compile_transforms(model)
    return model, after_step, NO_CONTEXT  # as the trainer: train.compile's hook computes θ, not ThetaLeaves


def enforcer(model):
    """``masks.enforce_layers`` on the layers listed once, as the trainer calls it after every step."""
    layers = powerprop_layers(model)
    return lambda optimizer: mask_ops.enforce_layers(layers, optimizer)


def torch_prune_masks(model, masks):
    layers = weight_layers(model)
    for name, mask in masks.items():
        prune.custom_from_mask(layers[name], "weight", mask)
    return model, None, NO_CONTEXT


def torch_parametrize_powerprop(model, masks):
    for layer in weight_layers(model).values():
        parametrize.register_parametrization(layer, "weight", PowerParametrization(ALPHA))
    return model, None, NO_CONTEXT


def torch_parametrize_powerprop_masks(model, masks):
    layers = weight_layers(model)
    for name, mask in masks.items():
        parametrize.register_parametrization(layers[name], "weight", PowerParametrization(ALPHA, mask))
    return model, None, NO_CONTEXT


@dataclass(frozen=True)
class Variant:
    name: str
    build: Callable
    torch_equivalent_of: str | None = None  # the harness variant this torch.nn.utils one is compared with
    compiled: bool = False  # torch.compile: its first step (the compile) is reported apart from the step time


VARIANTS = [
    Variant("dense", ours_dense),
    Variant("powerprop α=2", ours_powerprop),
    Variant("masks 90% (masks.install)", ours_masks),
    Variant("powerprop α=2 + masks 90%", ours_powerprop_masks),
    Variant("  the same, θ in autograd (DDP's path)", ours_powerprop_masks_in_autograd),
    Variant("torch prune.custom_from_mask 90%", torch_prune_masks, "masks 90% (masks.install)"),
    Variant("torch parametrize powerprop α=2", torch_parametrize_powerprop, "powerprop α=2"),
    Variant("torch parametrize powerprop α=2 + mask", torch_parametrize_powerprop_masks, "powerprop α=2 + masks 90%"),
]
#: with --compile: train.compile's path (θ = φ|φ| of every layer in one torch.compile call per forward pass)
COMPILED_VARIANTS = [Variant("powerprop α=2 + masks 90%, compiled", ours_powerprop_masks_compiled, compiled=True)]


# -- workloads ---------------------------------------------------------------------------
@dataclass
class Workload:
    name: str
    device: str
    make_model: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    batch_size: int
    steps_per_round: int
    rounds: int
    warmup_steps: int
    targets: list[tuple[str, float]] = field(default_factory=list)  # (variant, max ratio vs dense)


def digits_mlp() -> nn.Module:
    return build_model({"name": "mlp", "hidden": [300, 100]}, (64,), 10)


def timm_resnet(arch: str) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        import timm

        return timm.create_model(arch, num_classes=10, pretrained=False)

    return make


def workloads(quick: bool) -> list[Workload]:
    scale = 0.1 if quick else 1.0
    chosen = [
        Workload("digits MLP 64-300-100-10, batch 60", "cpu", digits_mlp, (64,), 60,
                 steps_per_round=20, rounds=max(3, int(60 * scale)), warmup_steps=50,
                 targets=[("powerprop α=2 + masks 90%", 1.20)]),
        Workload("timm resnet18, 3x32x32, batch 32", "cpu", timm_resnet("resnet18"), (3, 32, 32), 32,
                 steps_per_round=1, rounds=max(3, int(15 * scale)), warmup_steps=2,
                 targets=[(COMPILED_VARIANTS[0].name, 1.15)]),
        Workload("timm resnet18, 3x32x32, batch 128 (the CIFAR configs' batch)", "cpu", timm_resnet("resnet18"), (3, 32, 32),
                 128, steps_per_round=1, rounds=max(3, int(9 * scale)), warmup_steps=1),
    ]
    if torch.cuda.is_available():
        chosen.append(
            Workload("timm resnet50, 3x224x224, batch 64", "cuda", timm_resnet("resnet50"), (3, 224, 224), 64,
                     steps_per_round=5, rounds=max(3, int(20 * scale)), warmup_steps=10,
                     targets=[("powerprop α=2 + masks 90%", 1.03)]))
    return chosen


# -- timing ------------------------------------------------------------------------------
@dataclass
class Prepared:
    variant: Variant
    model: nn.Module
    optimizer: torch.optim.Optimizer
    after_step: Callable | None
    step_context: contextlib.AbstractContextManager
    times: list[float] = field(default_factory=list)
    first_step_s: float = 0.0  # the first warm-up step (for a compiled variant: the compile)


def synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def train_step(prepared: Prepared, features: torch.Tensor, labels: torch.Tensor) -> None:
    with prepared.step_context:
        loss = F.cross_entropy(prepared.model(features), labels)
        prepared.optimizer.zero_grad(set_to_none=True)
        loss.backward()
    prepared.optimizer.step()
    if prepared.after_step is not None:
        prepared.after_step(prepared.optimizer)  # as the trainer calls masks.enforce_layers


def prepare_variants(workload: Workload, variants: list[Variant]) -> list[Prepared]:
    """Every variant starts from a copy of the same initialised dense model and the same masks."""
    torch.manual_seed(0)
    base = workload.make_model()
    masks = {name: kept.float() for name, kept in mask_ops.prune(score("magnitude", base), KEEP, "layerwise", 2.0).items()}
    prepared = []
    for variant in variants:
        model, after_step, step_context = variant.build(copy.deepcopy(base), {name: mask.clone() for name, mask in masks.items()})
        model = model.to(workload.device).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        prepared.append(Prepared(variant, model, optimizer, after_step, step_context))
    return prepared


def time_workload(workload: Workload, variants: list[Variant]) -> list[Prepared]:
    prepared = prepare_variants(workload, variants)
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(workload.batch_size, *workload.input_shape, generator=generator).to(workload.device)
    labels = torch.randint(0, 10, (workload.batch_size,), generator=generator).to(workload.device)
    for item in prepared:
        started = time.perf_counter()
        train_step(item, features, labels)
        synchronise(workload.device)
        item.first_step_s = time.perf_counter() - started
        for _ in range(workload.warmup_steps):
            train_step(item, features, labels)
    synchronise(workload.device)
    for round_index in range(workload.rounds):
        shift = round_index % len(prepared)
        for item in prepared[shift:] + prepared[:shift]:
            synchronise(workload.device)
            started = time.perf_counter()
            for _ in range(workload.steps_per_round):
                train_step(item, features, labels)
            synchronise(workload.device)
            item.times.append((time.perf_counter() - started) / workload.steps_per_round)
    return prepared


# -- report ------------------------------------------------------------------------------
def median_ms(item: Prepared) -> float:
    return 1000 * statistics.median(item.times)


def spread_percent(item: Prepared) -> float:
    """Half the inter-quartile range relative to the median: the round-to-round noise."""
    quartiles = statistics.quantiles(item.times, n=4)
    return 100 * (quartiles[2] - quartiles[0]) / 2 / statistics.median(item.times)


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def workload_report(workload: Workload, prepared: list[Prepared]) -> tuple[str, list[str]]:
    by_name = {item.variant.name: item for item in prepared}
    dense = median_ms(by_name["dense"])
    lines = [f"\n## {workload.name} on {workload.device}  ({workload.rounds} rounds x {workload.steps_per_round} steps, "
             f"{workload.warmup_steps} warm-up steps per variant)\n",
             f"{'variant':<42} {'ms/step':>9} {'±noise':>7} {'vs dense':>9}"]
    for item in prepared:
        lines.append(f"{item.variant.name:<42} {median_ms(item):>9.3f} {spread_percent(item):>6.1f}% {median_ms(item) / dense:>8.3f}x")
    for item in prepared:
        if item.variant.compiled:
            lines.append(f"  compile time of '{item.variant.name}' (its first step, not in ms/step): {item.first_step_s:.1f} s")
    checks = []
    for variant_name, limit in workload.targets:
        if variant_name not in by_name:
            checks.append(f"NOT MEASURED  {workload.device} {workload.name}: {variant_name} <= {limit:.2f}x dense (run with --compile)")
            continue
        ratio = median_ms(by_name[variant_name]) / dense
        checks.append(f"{verdict(ratio <= limit)}  {workload.device} {workload.name}: {variant_name} = {ratio:.3f}x dense"
                      f" (target <= {limit:.2f}x)")
    for item in prepared:
        if item.variant.torch_equivalent_of:
            ours = by_name[item.variant.torch_equivalent_of]
            ratio = median_ms(ours) / median_ms(item)
            checks.append(f"{verdict(ratio <= 1.0)}  {workload.device} {workload.name}: {ours.variant.name} = {ratio:.3f}x "
                          f"{item.variant.name} (target: not slower, <= 1.00x)")
    return "\n".join(lines), checks


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_description(label: str) -> str:
    lines = [
        f"label: {label}",
        f"host: {platform.node()}",
        f"date (UTC): {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"cpu: {cpu_model()}, {os.cpu_count()} logical cores visible, torch threads {torch.get_num_threads()}",
        f"platform: {platform.platform()}, python {platform.python_version()}",
        f"torch: {torch.__version__}",
    ]
    if torch.cuda.is_available():
        lines.append(f"gpu: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})")
    else:
        lines.append("gpu: none visible (torch.cuda.is_available() is False): the GPU ResNet-50 target was not measured")
    return "\n".join(lines)


def run(label: str, quick: bool, threads: int, compiled: bool = False) -> str:
    torch.set_num_threads(threads)
    started, load_before = time.perf_counter(), load_average()
    sections, checks = [], []
    for workload in workloads(quick):
        section, workload_checks = workload_report(workload, time_workload(workload, VARIANTS + (COMPILED_VARIANTS if compiled else [])))
        print(section, flush=True)
        sections.append(section)
        checks += workload_checks
    header = (
        "# Training-step time: dense vs Powerprop vs masks, harness vs torch.nn.utils\n\n"
        + machine_description(label)
        + f"\nload average (1/5/15 min) before: {load_before}, after: {load_average()}"
        + "\n\nstep = forward + cross-entropy + zero_grad + backward + SGD step, as the trainer takes it in one process: "
        "the harness's Powerprop variants compute θ of α = 2 layers outside autograd (ThetaLeaves) unless named "
        "'θ in autograd' (the DDP path) or 'compiled' (train.compile); its masks variants call "
        "masks.enforce_layers(layers, optimizer) after the step (with these fixed masks it checks the optimizer "
        "state once, then skips the layers); "
        f"alpha={ALPHA:g}, masks keep {KEEP:g} per layer (output layer 2x), median over rounds; "
        "±noise = half the inter-quartile range of the round times.\n"
        "'not slower' checks are strict (<= 1.00x); a ratio within the ±noise of both variants is a tie, "
        "whichever word is printed."
        + (" QUICK SMOKE RUN — not for the record." if quick else "")
    )
    if not torch.cuda.is_available():
        checks.append("NOT MEASURED  cuda timm resnet50: powerprop α=2 + masks 90% <= 1.03x dense (no CUDA device visible)")
    footer = "\n\n## Targets\n\n" + "\n".join(checks) + f"\n\ntotal benchmark time: {time.perf_counter() - started:.0f} s\n"
    return header + "\n" + "\n".join(sections) + footer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default=platform.node() or "unknown", help="machine label in the output file name")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = what training jobs use)")
    parser.add_argument("--quick", action="store_true", help="few rounds: a smoke test, not a measurement")
    parser.add_argument("--compile", action="store_true",
                        help="also time train.compile's path (θ = φ|φ| through torch.compile); its compile time is reported apart")
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    report = run(args.label, args.quick, args.threads, args.compile)
    out = args.out_dir / f"step_time_{args.label}.txt"
    write_text_atomic(out, report)
    print(report.split("## Targets", 1)[1])
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
