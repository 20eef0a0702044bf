"""Where the benchmark scripts write their output: ``bench/results/<name>_<label>.txt``, atomically."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def save(name: str, label: str, lines: list[str]) -> int:
    """Print ``lines``, write them to ``bench/results/<name>_<label>.txt`` and return 0 (the exit code)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from bench_powerprop.io import write_text_atomic

    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = RESULTS / f"{name}_{label}.txt"
    write_text_atomic(out, text)
    print(f"written to {out}")
    return 0
