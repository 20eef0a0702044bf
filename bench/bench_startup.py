"""The fixed cost of one training job: ``python -m bench_powerprop train`` of a 1-step digits cell, end to end.

Every cell of the grid is one such process, so this cost is paid ~190 times by the default run.
Runs the command ``--runs`` times (fresh run and checkpoint directories each time) and prints the
median wall time, plus the modules that take longest to import (``python -X importtime``).

    .venv/bin/python bench/bench_startup.py                 # writes bench/results/startup_<hostname>.txt
    .venv/bin/python bench/bench_startup.py --runs 9
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
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def one_step_spec() -> dict:
    from helpers import digits_spec

    return digits_spec(steps=1)


def timed_run(spec: dict, scratch: Path, index: int, importtime: bool = False) -> tuple[float, str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "bench_powerprop", "train",
               "--spec", json.dumps(spec), "--run-dir", str(scratch / f"run{index}"),
               "--checkpoint-dir", str(scratch / f"ckpt{index}"), "--no-progress"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - started, result.stderr


def slowest_imports(importtime_log: str, count: int = 8) -> list[tuple[int, str]]:
    """Top-level imports (not nested in another) by cumulative microseconds."""
    imports = []
    for line in importtime_log.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit() and not name.startswith("  "):
            imports.append((int(cumulative), name.strip()))
    return sorted(imports, reverse=True)[:count]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed runs (the median is reported)")
    parser.add_argument("--label", default=platform.node(), help="machine label in the output file name")
    args = parser.parse_args(argv)
    spec = one_step_spec()
    with tempfile.TemporaryDirectory() as scratch:
        timed_run(spec, Path(scratch), -1)  # warm the file cache
        times = [timed_run(spec, Path(scratch), index)[0] for index in range(args.runs)]
        _, importtime = timed_run(spec, Path(scratch), args.runs, importtime=True)
    lines = [
        f"# training-job start-up ({datetime.now(UTC).isoformat(timespec='seconds')}, host {platform.node()}, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()[0]:.2f})",
        f"python -m bench_powerprop train, digits MLP, 1 step: median {statistics.median(times):.2f} s over {args.runs} runs "
        f"(min {min(times):.2f}, max {max(times):.2f}); goal <= 2 s: {'PASS' if statistics.median(times) <= 2 else 'MISS'}",
        "slowest top-level imports (cumulative, one run under -X importtime):",
        *(f"  {micros / 1e6:5.2f} s  {name}" for micros, name in slowest_imports(importtime)),
    ]
    return save("startup", args.label, lines)


if __name__ == "__main__":
    sys.exit(main())
