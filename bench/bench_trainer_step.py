"""The trainer's own step, per method, as a user's run takes it; optionally this checkout against another.

``bench_step_time.py`` times the Powerprop kernel in isolation (one fixed batch, fixed masks, no method
hooks). This script times what ``make run`` runs: the real ``Trainer`` of each cell of the default's
``sparse_digits`` experiment (the LeNet-300-100 MLP on digits; one cell per method, α = 2 where the grid
has it, the grid's first sparsity), with its data sampling, method hooks, mask updates at their real
frequency (RigL/SET/DSR/Top-KAST updates, GMP pruning), FLOP counting, logging, evaluation and
checkpoints. ``Trainer.run`` is timed for N1 and for N2 steps (the experiment's ``train.steps`` set to
each, so every schedule is the one a run of that length has) in a fresh process each; the per-step time
is (T(N2) − T(N1)) / (N2 − N1): set-up, data loading and the final evaluation cancel.

Every (checkout, method, N) is its own process, in rounds: each round measures every method at both
lengths, in rotating order; with ``--compare OTHER`` both checkouts in each round, their order
alternating, so drifting load hits both alike. Reported: min and median over rounds (≥ 3 for the record).

    .venv/bin/python bench/bench_trainer_step.py                          # bench/results/trainer_step_<host>.txt
    .venv/bin/python bench/bench_trainer_step.py --compare ../before      # ... trainer_step_compare_<host>.txt
    .venv/bin/python bench/bench_trainer_step.py --quick                  # a smoke run, not for the record
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _results import save

REPO = Path(__file__).resolve().parent.parent
EXPERIMENT = "sparse_digits"


def measure(repo: Path, method: str, steps: int) -> dict:
    """In this (child) process: T(steps) of ``Trainer.run`` for ``method``'s cell of ``repo``'s default config."""
    sys.path.insert(0, str(repo))
    from bench_powerprop.config import load_configs
    from bench_powerprop.plan import Plan
    from bench_powerprop.training.trainer import Trainer

    config = load_configs([repo / "configs" / "default.yaml"], [f"experiments.{EXPERIMENT}.train.steps={steps}"])
    cells = [cell for cell in Plan(config).cells_of(EXPERIMENT) if cell.method == method and cell.seed == 0]
    if not cells:
        raise SystemExit(f"--method {method}: no cell of {EXPERIMENT} in {repo}/configs/default.yaml")
    cell = max(cells, key=lambda c: (c.alpha == 2, -c.sparsity))
    spec = Plan(config).spec(cell)
    with tempfile.TemporaryDirectory() as checkpoints:
        started = time.perf_counter()
        metrics = Trainer(spec, Path(checkpoints), progress=False).run()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "alpha": cell.alpha, "sparsity": cell.sparsity, "steps": metrics.get("steps", steps)}


def child(repo: Path, method: str, steps: int) -> dict:
    command = [sys.executable, __file__, "--child", str(repo), "--method", method, "--steps", str(steps)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{repo} {method} {steps} steps failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def default_methods(repo: Path) -> list[str]:
    sys.path.insert(0, str(repo))
    from bench_powerprop.config import load_configs
    from bench_powerprop.plan import Plan

    return list(dict.fromkeys(cell.method for cell in Plan(load_configs([repo / "configs" / "default.yaml"])).cells_of(EXPERIMENT)))


def rounds(checkouts: dict[str, Path], methods: list[str], lengths: tuple[int, int], repeats: int) -> dict:
    """ms per step of each (checkout, method) in each round."""
    per_step: dict[tuple[str, str], list[float]] = {(name, method): [] for name in checkouts for method in methods}
    facts = {}
    for index in range(repeats):
        order = list(checkouts) if index % 2 == 0 else list(reversed(checkouts))
        rotated = methods[index % len(methods):] + methods[:index % len(methods)]
        for method in rotated:
            for name in order:
                times = {n: child(checkouts[name], method, n) for n in (lengths if index % 2 == 0 else lengths[::-1])}
                long = times[lengths[1]]
                facts[method] = (long["alpha"], long["sparsity"])
                per_step[(name, method)].append(1e3 * (long["seconds"] - times[lengths[0]]["seconds"]) / (lengths[1] - lengths[0]))
        print(f"round {index + 1}/{repeats} done", file=sys.stderr, flush=True)
    return {"per_step": per_step, "facts": facts}


def header(checkouts: dict[str, Path], lengths, repeats, load_before) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown") if Path("/proc/cpuinfo").exists() else platform.processor()

    def commit(repo: Path) -> str:
        result = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False)
        return result.stdout.strip() or "not a git checkout"

    return [
        "# Trainer step time per method: Trainer.run of the default's sparse_digits cells, (T(N2) − T(N1)) / (N2 − N1)",
        "",
        f"host: {platform.node()}, date (UTC): {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"cpu: {cpu}, {os.cpu_count()} logical cores visible; platform {platform.platform()}, python {platform.python_version()}",
        *(f"checkout {name}: {path} at {commit(path)}" for name, path in checkouts.items()),
        f"N1 = {lengths[0]}, N2 = {lengths[1]} steps; {repeats} rounds, every (checkout, method, N) in its own process",
        f"load average (1/5/15 min) before: {' '.join(f'{v:.2f}' for v in load_before)}, "
        f"after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        "",
    ]


def table(result: dict, checkouts: dict[str, Path], methods: list[str]) -> list[str]:
    per_step, facts = result["per_step"], result["facts"]
    names = list(checkouts)
    columns = "".join(f"  {name + ' min':>12}{name + ' median':>15}" for name in names)
    lines = [f"{'method':<10}{'α':>5}{'sparsity':>10}{columns}" + ("  median ratio" if len(names) == 2 else "  vs dense"), ""]
    dense = statistics.median(per_step[(names[0], "dense")]) if "dense" in methods else None
    for method in methods:
        alpha, sparsity = facts[method]
        cells = "".join(f"  {min(per_step[(n, method)]):12.3f}{statistics.median(per_step[(n, method)]):15.3f}" for n in names)
        medians = [statistics.median(per_step[(n, method)]) for n in names]
        last = (f"  {medians[1] / medians[0]:12.3f}x" if len(names) == 2 else
                f"  {medians[0] / dense:9.3f}x" if dense else "")
        lines.append(f"{method:<10}{alpha:>5g}{sparsity:>10g}{cells}{last}")
    lines += ["", "ms per step; min and median over the rounds; ratio: the second checkout's median over the first's."
              if len(names) == 2 else "ms per step; min and median over the rounds; vs dense: median over dense's median."]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", type=Path, help="another checkout (e.g. the commit before a change) measured alongside")
    parser.add_argument("--methods", help="comma-separated (default: every method of the default's sparse_digits)")
    parser.add_argument("--steps", default="500,1000", help="N1,N2 (default 500,1000: the experiment's 1000 steps and half)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (at least 3 for a number to quote)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 methods, 20 and 60 steps, 1 round; not for the record")
    parser.add_argument("--label", default=platform.node(), help="machine label in the output file name")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child.resolve(), args.method, int(args.steps))))
        return 0
    lengths = tuple(int(n) for n in args.steps.split(","))
    if len(lengths) != 2 or not 0 < lengths[0] < lengths[1]:
        parser.error(f"--steps {args.steps}: want N1,N2 with 0 < N1 < N2")
    checkouts = {"this": REPO}
    if args.compare:
        if not (args.compare / "bench_powerprop").is_dir():
            parser.error(f"--compare {args.compare}: not a checkout of this project (no bench_powerprop/)")
        checkouts = {"other": args.compare.resolve(), "this": REPO}
    methods = args.methods.split(",") if args.methods else default_methods(REPO)
    repeats = args.repeats
    if args.quick:
        methods, lengths, repeats = methods[:2], (20, 60), 1
    load_before = os.getloadavg()
    result = rounds(checkouts, methods, lengths, repeats)
    lines = header(checkouts, lengths, repeats, load_before) + table(result, checkouts, methods)
    if args.quick:
        print("\n".join([*lines, "", "(--quick: not written to bench/results/)"]))
        return 0
    return save("trainer_step_compare" if args.compare else "trainer_step", args.label, lines)


if __name__ == "__main__":
    sys.exit(main())
