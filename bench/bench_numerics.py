"""What portable numerics costs: training-step time of the default's models, portable against native.

The mode's variables are read when torch loads, so each mode lives in its own worker process (started once,
torch imported under ``bench_powerprop.numerics.apply``); the parent alternates them round by round (every
round times each model in every variant, the order reversing every round) so that drifting machine load hits
both alike. A *step* is forward + cross-entropy + zero_grad + backward + SGD step of a Powerprop α = 2
model (the default's training), one thread; the reported time is the median over rounds of the mean step
time within a round.

    .venv/bin/python bench/bench_numerics.py                 # writes bench/results/numerics_<hostname>.txt
    .venv/bin/python bench/bench_numerics.py --label mybox   # ... numerics_mybox.txt
    .venv/bin/python bench/bench_numerics.py --quick         # a smoke run (seconds), not for the record
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_powerprop import numerics  # noqa: E402  (torch-free)

#: name → (model config, input features, batch): the default run's training shapes
MODELS = {
    "digits MLP 64-300-100-10": ({"name": "mlp", "hidden": [300, 100]}, 64, 60),
    "mnist5k MLP 784-300-100-10": ({"name": "mlp", "hidden": [300, 100]}, 784, 60),
    "mnist5k LeNet-5 28x28": ({"name": "lenet5"}, 784, 60),
}


#: What is timed: a mode, less some of its variables, with or without portable mode's oneDNN GEMM (which of
#: portable's pins costs what; only the first two are numerics the harness runs).
VARIANTS = {
    "native": ("native", (), True),
    "portable": ("portable", (), True),
    "portable with MKL's GEMM": ("portable", (), False),
    "portable less MKL_CBWR": ("portable", ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS"), True),
    "portable less oneDNN's ISA cap": ("portable", ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"), True),
    "portable less ATen's AVX2": ("portable", ("ATEN_CPU_CAPABILITY",), True),
}


def worker(variant: str) -> None:
    """Serve ``{"model": name, "steps": n}`` lines with the seconds those steps took, under ``variant``."""
    mode, unset, onednn_gemm = VARIANTS[variant]
    numerics.apply(mode, 1)
    for name in unset:
        os.environ.pop(name, None)
    import torch

    from bench_powerprop import portable_gemm
    from bench_powerprop.models import build_model
    from bench_powerprop.powerprop import powerpropify

    torch.set_num_threads(1)
    torch.manual_seed(0)
    models = {}
    for name, (config, features, batch) in MODELS.items():
        model = powerpropify(build_model(config, (features,), 10), 2.0)
        x, y = torch.rand(batch, features), torch.randint(10, (batch,))
        models[name] = (model, torch.optim.SGD(model.parameters(), lr=0.01), x, y)
    if not onednn_gemm:
        portable_gemm.uninstall()
    print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        model, optimizer, x, y = models[request["model"]]
        start = time.perf_counter()
        for _ in range(request["steps"]):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


class Worker:
    def __init__(self, variant: str):
        self.process = subprocess.Popen([sys.executable, __file__, "--worker", variant], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        self.capability = json.loads(self.process.stdout.readline())["capability"]

    def time(self, model: str, steps: int) -> float:
        self.process.stdin.write(json.dumps({"model": model, "steps": steps}) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["seconds"] / steps

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def measure(rounds: int, steps: int, warmup: int) -> tuple[dict, dict]:
    workers = {variant: Worker(variant) for variant in VARIANTS}
    times = {(model, mode): [] for model in MODELS for mode in workers}
    for model in MODELS:
        for each in workers.values():
            each.time(model, warmup)
    for round_index in range(rounds):
        order = list(workers) if round_index % 2 == 0 else list(reversed(workers))
        for model in MODELS:
            for mode in order:
                times[(model, mode)].append(workers[mode].time(model, steps))
    capabilities = {variant: each.capability for variant, each in workers.items()}
    for each in workers.values():
        each.close()
    return times, capabilities


def noise(values: list[float]) -> float:
    quartiles = statistics.quantiles(values, n=4)
    return (quartiles[2] - quartiles[0]) / 2 / statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--label", default=platform.node())
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 5 steps: a smoke run, not for the record")
    parser.add_argument("--note", default="", help="a line about the machine's state (e.g. shared and loaded)")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return 0
    rounds, steps = (3, 5) if args.quick else (args.rounds, args.steps)
    load_before = os.getloadavg()
    times, capabilities = measure(rounds, steps, warmup=max(steps, 20))
    load_after = os.getloadavg()
    from bench_powerprop.hardware import cpuid_strings

    vendor, model = cpuid_strings() or ("unknown vendor", platform.processor())
    lines = ["# Training-step time: portable numerics against native", "", f"label: {args.label}",
             f"host: {platform.node()}", f"date (UTC): {datetime.now(UTC).isoformat(timespec='seconds')}",
             f"cpu: {vendor} {model}, {os.cpu_count()} logical cores visible, torch threads 1",
             f"torch CPU capability: native {capabilities['native']}, portable {capabilities['portable']}",
             f"platform: {platform.platform()}, python {platform.python_version()}",
             "load average (1/5/15 min) before: " + " ".join(f"{x:.2f}" for x in load_before)
             + ", after: " + " ".join(f"{x:.2f}" for x in load_after)]
    if args.note:
        lines.append(f"note: {args.note}")
    lines += ["", "step = forward + cross-entropy + zero_grad + backward + SGD step of a Powerprop α = 2 model, batch 60, "
              "one thread; each mode (and each breakdown variant) in its own worker process (the variables act when torch "
              "loads), alternated "
              f"round by round; {rounds} rounds x {steps} steps; median (and min) over rounds; ±noise = half the inter-quartile "
              "range of the round times.", "",
              f"{'model':<32}{'native ms':>10}{'(min)':>8}{'±noise':>8}{'portable ms':>13}{'(min)':>8}{'±noise':>8}"
              f"{'portable/native':>17}{'(of mins)':>11}"]
    for model in MODELS:
        native, portable = times[(model, "native")], times[(model, "portable")]
        ratio = statistics.median(portable) / statistics.median(native)
        lines.append(f"{model:<32}{1000 * statistics.median(native):>10.3f}{1000 * min(native):>8.3f}"
                     f"{100 * noise(native):>7.1f}%{1000 * statistics.median(portable):>13.3f}{1000 * min(portable):>8.3f}"
                     f"{100 * noise(portable):>7.1f}%{ratio:>16.2f}x{min(portable) / min(native):>10.2f}x")
    lines += ["", "Which pin costs what: step time / native's, portable with MKL's (compatible) GEMM instead of oneDNN's "
              "(before the oneDNN route), or with one of portable's pins left out (not portable: for the breakdown only)",
              "", f"{'model':<32}" + "".join(f"{name:>32}" for name in list(VARIANTS)[2:])]
    for model in MODELS:
        native = statistics.median(times[(model, "native")])
        lines.append(f"{model:<32}" + "".join(f"{statistics.median(times[(model, name)]) / native:>31.2f}x"
                                               for name in list(VARIANTS)[2:]))
    if args.quick:
        print("\n".join(lines))
        return 0
    from _results import save

    return save("numerics", args.label, lines)


if __name__ == "__main__":
    sys.exit(main())
