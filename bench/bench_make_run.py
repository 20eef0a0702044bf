"""Training cells per minute of the default config through Snakemake: the training server off and on, alternated.

Each mode trains the same cells of ``configs/default.yaml`` in a fresh scratch directory with
``snakemake -c<cores>`` (what ``make run`` starts), ``BENCH_POWERPROP_TRAIN_SERVER=off`` (every
training job imports torch in its own process, the old behaviour) and ``on`` (jobs fork from the
pre-warmed server, ``bench_powerprop.training.server``). The timed command asks for the cells'
``metrics.json`` only (training jobs, plus the parents their lineage needs); tables, figures and the
report are not part of it. By default a slice: every k-th cell of the plan, so every experiment is
in it (``--cells``); ``--all`` trains every cell. cells/min = trained cells / wall time.

The two modes run ``--repeats`` times (default 3) in one sitting, their order alternating (off, on; then
on, off; ...), each in a fresh scratch directory, so neither always meets a warm page cache or the other's
leftover load; the file lists every run and each mode's min and median.

    .venv/bin/python bench/bench_make_run.py               # writes bench/results/make_run_<hostname>.txt
    .venv/bin/python bench/bench_make_run.py --cells 24    # a smaller slice
    .venv/bin/python bench/bench_make_run.py --all         # every training cell of the default
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _results import save

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_powerprop.config import load_configs  # noqa: E402
from bench_powerprop.plan import Plan  # noqa: E402

MODES = ("off", "on")


def chosen_cells(plan: Plan, count: int | None) -> list[str]:
    """metrics.json of every k-th cell of the plan (all cells when ``count`` is None)."""
    cells = plan.cells
    step = 1 if count is None else max(1, len(cells) // count)
    return [f"{plan.run_dir(cell)}/metrics.json" for cell in cells[::step][:count]]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train(targets: list[str], mode: str, scratch: Path, cores: int) -> tuple[float, float, int]:
    """Wall seconds and CPU seconds (user + system of Snakemake, its jobs and the server's workers, all waited for)
    of the Snakemake run, and the number of cells it trained."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{mode}_", dir=scratch))
    (workdir / "configs").symlink_to(REPO / "configs")
    command = [sys.executable, "-m", "snakemake", f"-c{cores}", "--snakefile", str(REPO / "Snakefile"), *targets]
    environment = {**os.environ, "BENCH_POWERPROP_TRAIN_SERVER": mode}
    started, cpu_before = time.perf_counter(), children_cpu()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=environment, check=False)
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu_before
    if result.returncode != 0:
        raise SystemExit(f"snakemake ({mode}) failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed, cpu, len(list((workdir / "results").glob("*/runs/**/metrics.json")))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=40, help="cells in the slice (every k-th cell of the default's plan)")
    parser.add_argument("--all", action="store_true", help="every training cell of the default instead of a slice")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="snakemake -c (default: every core, as make run)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode, alternating their order (>= 3 for the record)")
    parser.add_argument("--label", default=platform.node(), help="machine label in the output file name")
    args = parser.parse_args(argv)
    plan = Plan(load_configs([REPO / "configs" / "default.yaml"]))
    targets = chosen_cells(plan, None if args.all else args.cells)
    load_before = os.getloadavg()
    runs: dict[str, list[tuple[float, float, int]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.repeats):
            for mode in (MODES if index % 2 == 0 else MODES[::-1]):
                runs[mode].append(train(targets, mode, Path(scratch), args.cores))
                print(f"run {index + 1}/{args.repeats}, server {mode}: {runs[mode][-1][0]:.1f} s", file=sys.stderr, flush=True)
    per_minute = {mode: [60 * cells / seconds for seconds, _, cells in measured] for mode, measured in runs.items()}
    cpu_per_cell = {mode: statistics.median(cpu / cells for _, cpu, cells in measured) for mode, measured in runs.items()}
    median = {mode: statistics.median(values) for mode, values in per_minute.items()}
    what = (f"all {len(plan.cells)} training cells" if args.all else
            f"a slice: {len(targets)} of the {len(plan.cells)} training cells (every {len(plan.cells) // len(targets)}th), "
            "plus the parents their lineage needs")
    lines = [
        f"# cells trained per minute by snakemake on configs/default.yaml ({datetime.now(UTC).isoformat(timespec='seconds')}, "
        f"host {platform.node()}, {platform.machine()}, {os.cpu_count()} cores, snakemake -c{args.cores}, "
        f"Python {platform.python_version()})",
        f"load average (1/5/15 min) before: {' '.join(f'{value:.2f}' for value in load_before)}, "
        f"after: {' '.join(f'{value:.2f}' for value in os.getloadavg())}",
        f"cells: {what}; training jobs only (no tables, figures or report)",
        f"{args.repeats} repeats, the modes' order alternating (off first in odd repeats, on first in even ones)",
        *(f"train server {mode:>3}, run {index + 1}: {cells} cells in {seconds:.1f} s = {60 * cells / seconds:.1f} cells/min; "
          f"CPU {cpu:.1f} s" for mode, measured in runs.items() for index, (seconds, cpu, cells) in enumerate(measured)),
        *(f"train server {mode:>3}: wall time min {min(s for s, _, _ in runs[mode]):.1f} s, median "
          f"{statistics.median(s for s, _, _ in runs[mode]):.1f} s; median {median[mode]:.1f} cells/min; "
          f"median CPU {cpu_per_cell[mode]:.2f} s per cell" for mode in MODES),
        f"ratio on/off of the medians: {median['on'] / median['off']:.2f}x cells per minute (goal >= 2x): "
        f"{'PASS' if median['on'] >= 2 * median['off'] else 'MISS'}; "
        f"{cpu_per_cell['off'] / cpu_per_cell['on']:.2f}x less CPU per cell (what other processes' load does not inflate)",
    ]
    name = "make_run" if not args.all else "make_run_all-cells"
    return save(name, args.label, lines)


if __name__ == "__main__":
    sys.exit(main())
