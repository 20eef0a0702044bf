"""How long Snakemake takes to plan a large grid of this workflow, against a bare Snakefile with as many jobs.

Writes a config with a sparse_training experiment of N training cells (5 methods × 2 α ×
20 sparsities × N/200 seeds; 10,000 by default) and a bare Snakefile with N trivial jobs plus one
aggregation job, runs ``snakemake -n --quiet`` on each in a fresh scratch directory (nothing is
trained), and prints both wall times and their ratio (goal: ≤ 1.5×).

    .venv/bin/python bench/bench_planning.py                   # writes bench/results/planning_<hostname>.txt
    .venv/bin/python bench/bench_planning.py --cells 2000      # writes bench/results/planning_2000-cells_<hostname>.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from _results import save

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
METHODS = ["gmp", "rigl", "topkast", "set", "static"]


def grid_config(cells: int) -> dict:
    seeds = max(1, cells // (len(METHODS) * 2 * 20))
    sparsities = [round(0.5 + 0.02 * i, 2) for i in range(20)]
    return {
        "active_experiments": ["sparse_digits"],
        "experiments": {"sparse_digits": {"grid": [
            {"method": METHODS, "alpha": [1, 2], "sparsity": sparsities, "seed": list(range(seeds))}]}},
    }


BARE_SNAKEFILE = """\
CELLS = range({cells})


rule all:
    input:
        "summary.txt",


rule aggregate:
    input:
        expand("cells/{{cell}}/metrics.json", cell=CELLS),
    output:
        "summary.txt",
    log:
        "logs/aggregate.log",
    shell:
        "cat {{input}} > {{output}}"


rule cell:
    output:
        "cells/{{cell}}/metrics.json",
    log:
        "logs/{{cell}}.log",
    shell:
        "echo {{wildcards.cell}} > {{output}}"
"""


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # user + system seconds of the snakemake process: what load from other processes does not inflate


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path) -> Timing:
    started, cpu_before = time.perf_counter(), children_cpu()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    timing = Timing(time.perf_counter() - started, children_cpu() - cpu_before)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return timing


def plan_workflow(cells: int, scratch: Path) -> Timing:
    workdir = scratch / "workflow"
    workdir.mkdir()
    (workdir / "configs").symlink_to(REPO / "configs")
    (workdir / "grid.yaml").write_text(yaml.safe_dump(grid_config(cells)))
    return timed([*SNAKEMAKE, "-n", "--quiet", "--snakefile", str(REPO / "Snakefile"), "--configfile", "grid.yaml"], workdir)


def plan_bare(cells: int, scratch: Path) -> Timing:
    workdir = scratch / "bare"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(BARE_SNAKEFILE.format(cells=cells))
    return timed([*SNAKEMAKE, "-n", "--quiet", "--snakefile", "Snakefile"], workdir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=10_000, help="training cells in the generated grid (multiple of 200)")
    parser.add_argument("--label", default=platform.node(), help="machine label in the output file name")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        bare = plan_bare(args.cells, Path(scratch))
        ours = plan_workflow(args.cells, Path(scratch))
    ratio, cpu_ratio = ours.wall / bare.wall, ours.cpu / bare.cpu
    lines = [
        f"# planning benchmark ({datetime.now(UTC).isoformat(timespec='seconds')}, host {platform.node()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f})",
        f"snakemake -n on {args.cells} cells: bench_powerprop workflow {ours.wall:.1f} s, bare Snakefile {bare.wall:.1f} s, "
        f"ratio {ratio:.2f}x (goal <= 1.5x): {'PASS' if ratio <= 1.5 else 'MISS'}",
        f"CPU time (user + system) of the same runs: workflow {ours.cpu:.1f} s, bare {bare.cpu:.1f} s, ratio {cpu_ratio:.2f}x",
    ]
    # the 10,000-cell grid is the benchmark of record; other sizes get their own file so they never overwrite it
    name = "planning" if args.cells == 10_000 else f"planning_{args.cells}-cells"
    return save(name, args.label, lines)


if __name__ == "__main__":
    sys.exit(main())
