"""The provenance table: what the report's environment and every cell's run.json say, counted per experiment."""

import json

from bench_powerprop.reporting import provenance


def run_info(commit: str, host: str, torch: str, started: str) -> dict:
    return {"git_commit": commit, "host": host, "versions": {"torch": torch, "python": "3.11.7"}, "started_utc": started,
            "slurm": {}}


def test_cells_are_counted_by_commit_host_and_version(tmp_path):
    infos = [run_info("abc", "node1", "2.14.1", "2026-01-01T00:00:02"), run_info("abc", "node2", "2.14.1", "2026-01-01T00:00:01"),
             run_info("def", "node1", "2.13.0", "2026-01-01T00:00:03")]
    cells = []
    for index, info in enumerate(infos):
        run_dir = tmp_path / f"cell{index}"
        run_dir.mkdir()
        (run_dir / "run.json").write_text(json.dumps(info))
        cells.append({"run_dir": str(run_dir)})
    table = provenance.provenance_table([{"experiment": "exp", "cells": cells}], "hash123", "abc-dirty")
    rows = {(scope, item): value for scope, item, value in table.itertuples(index=False)}
    assert rows[("report", "config hash")] == "hash123" and rows[("report", "workflow git commit")] == "abc-dirty"
    assert rows[("exp", "cells")] == "3"
    assert rows[("exp", "trained at git commit")] == "abc (2 cells); def (1 cell)"
    assert rows[("exp", "trained on host")] == "node1 (2 cells); node2 (1 cell)"
    assert rows[("exp", "torch version")] == "2.14.1 (2 cells); 2.13.0 (1 cell)"
    assert rows[("exp", "training started (UTC)")] == "2026-01-01T00:00:01 … 2026-01-01T00:00:03"
    assert ("exp", "SLURM jobs") not in rows
    assert "| exp" in provenance.page_markdown(table)
