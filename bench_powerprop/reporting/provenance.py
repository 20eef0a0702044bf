"""Provenance for the report: the code, packages, machines and config behind the results.

Two scopes: ``report`` (the workflow's commit when Snakemake parsed it, the host and packages the
report was built with, and the hash of the whole config) and one per experiment, read from every cell's ``run.json`` (the commit, host
and package versions each training job recorded, counted). Wall time per rule is not here:
Snakemake's report has its own runtime statistics.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from bench_powerprop import hardware
from bench_powerprop.io import package_versions, read_json
from bench_powerprop.reporting.pages import markdown_table, write_table_page

COLUMNS = ["scope", "item", "value"]
REPORT_SCOPE = "report"


def counted(values: Iterable[str]) -> str:
    """``a (3 cells); b (1 cell)``, most frequent first."""
    counts = Counter(values)
    return "; ".join(f"{value} ({n} cell{'s' if n != 1 else ''})" for value, n in counts.most_common())


def report_rows(config_hash: str, commit: str, overrides: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    rows = [
        ("built (UTC)", datetime.now(UTC).isoformat(timespec="seconds")),
        ("workflow git commit", commit),
        ("host", platform.node()),
        ("platform", platform.platform()),
        ("config hash", config_hash),
        *(("config override (--set)", text) for text in overrides),
        *((f"{name} version", version) for name, version in package_versions().items()),
    ]
    return [(REPORT_SCOPE, item, value) for item, value in rows]


def experiment_rows(manifest: dict) -> list[tuple[str, str, str]]:
    runs = [read_json(Path(cell["run_dir"]) / "run.json") for cell in manifest["cells"]]
    started = sorted(run["started_utc"] for run in runs)
    packages = sorted({name for run in runs for name in run["versions"]})
    rows = [
        ("cells", str(len(runs))),
        ("trained at git commit", counted(run["git_commit"] for run in runs)),
        ("trained on host", counted(run["host"] for run in runs)),
        ("training started (UTC)", f"{started[0]} … {started[-1]}" if started else "—"),
        *((f"{name} version", counted(run["versions"].get(name, "—") for run in runs)) for name in packages),
        *((item, counted(field(run) for run in runs)) for item, field in hardware.FIELDS.items()),
    ]
    slurm_jobs = {run["slurm"]["SLURM_JOB_ID"] for run in runs if run.get("slurm", {}).get("SLURM_JOB_ID")}
    if slurm_jobs:
        rows.append(("SLURM jobs", str(len(slurm_jobs))))
    return [(manifest["experiment"], item, value) for item, value in rows]


def provenance_table(manifests: Iterable[dict], config_hash: str, commit: str, overrides: Iterable[str] = ()) -> pd.DataFrame:
    rows = report_rows(config_hash, commit, overrides)
    for manifest in manifests:
        rows += experiment_rows(manifest)
    return pd.DataFrame(rows, columns=COLUMNS)


def page_markdown(table: pd.DataFrame) -> str:
    return ("# Provenance\n\nThe code, packages, machines and config behind these results: the report's own "
            "environment, then what every training job of each experiment recorded in its run.json. Wall time per "
            "rule: the report's Statistics page.\n\n" + markdown_table(table) + "\n")


def write_provenance(manifest_paths: Iterable[Path], config_hash: str, commit: str, csv: Path, markdown_path: Path,
                     page: Path, overrides: Iterable[str] = ()) -> str:
    table = provenance_table((read_json(path) for path in manifest_paths), config_hash, commit, overrides)
    text = page_markdown(table)
    write_table_page(table, text, "Provenance", csv, markdown_path, page)
    return text
