"""Command line of the harness: ``python -m bench_powerprop <command> --help``.

The Snakemake rules call these commands; they are usable by hand to rerun one step.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

DESCRIPTION = """\
bench_powerprop: reproduce Powerpropagation (Schwarz et al., NeurIPS 2021) and sparse-training baselines.

Normally you do not call these commands yourself: run `snakemake -c all` (or `make run`),
which calls them for every cell of the grid in configs/default.yaml.
"""


def _json_arg(text: str):
    return json.loads(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench_powerprop", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train one grid cell (resumes from its checkpoints)")
    train.add_argument("--spec", type=_json_arg, required=True, help="the cell's full spec as JSON")
    train.add_argument("--run-dir", type=Path, required=True, help="where run.json, train_log.csv, model.pt, metrics.json go")
    train.add_argument("--checkpoint-dir", type=Path, required=True, help="checkpoints (outside Snakemake outputs)")
    train.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")

    prune = commands.add_parser("prune-eval", help="one-shot magnitude pruning sweep of a trained cell")
    prune.add_argument("--run-dir", type=Path, required=True)
    prune.add_argument("--prune", type=_json_arg, required=True, help="the experiment's prune config as JSON")
    prune.add_argument("--out", type=Path, required=True)

    aggregate = commands.add_parser("aggregate-oneshot", help="tidy + summary tables of a one-shot experiment")
    aggregate.add_argument("--expected", type=_json_arg, required=True, help="JSON {run_dir: spec_hash} of every cell")
    aggregate.add_argument("--experiment-info", type=_json_arg, required=True)
    aggregate.add_argument("--runs-out", type=Path, required=True, help="tidy table, one row per cell and level")
    aggregate.add_argument("--summary-out", type=Path, required=True, help="mean ± std over seeds, diverged counts")
    aggregate.add_argument("--markdown-out", type=Path, required=True, help="the summary as a readable table")

    figures = commands.add_parser("figures-oneshot", help="accuracy-vs-weights figure and θ histograms")
    figures.add_argument("--runs", type=Path, required=True, help="the tidy runs.csv")
    figures.add_argument("--models", type=Path, nargs="+", required=True, help="model.pt of one seed per α")
    figures.add_argument("--title", required=True)
    figures.add_argument("--accuracy-figure", type=Path, required=True)
    figures.add_argument("--histogram-figure", type=Path, required=True)

    validate = commands.add_parser("validate", help="validate config files (merged in order) and list the grid")
    validate.add_argument("configfiles", type=Path, nargs="+")
    return parser


def run_train(args) -> int:
    from bench_powerprop.train import train_cell

    metrics = train_cell(args.spec, args.run_dir, args.checkpoint_dir, progress=not args.no_progress)
    status = f"DIVERGED ({metrics['diverged_reason']})" if metrics["diverged"] else "ok"
    print(f"test accuracy {metrics['test_accuracy']:.4f}, sparsity {metrics['sparsity']:.4f}: {status}")
    return 0


def run_prune_eval(args) -> int:
    from bench_powerprop.io import read_json, write_csv_atomic
    from bench_powerprop.oneshot import prune_sweep

    rows = prune_sweep(args.run_dir / "model.pt", read_json(args.run_dir / "metrics.json"), args.prune)
    write_csv_atomic(args.out, rows)
    print(rows[["keep", "test_accuracy"]].to_string(index=False))
    return 0


def run_aggregate_oneshot(args) -> int:
    from bench_powerprop.report import oneshot_runs_table, write_oneshot_tables

    runs = oneshot_runs_table(args.expected)
    paths = {"runs": args.runs_out, "summary": args.summary_out, "markdown": args.markdown_out}
    print(write_oneshot_tables(runs, paths, args.experiment_info))
    return 0


def run_figures_oneshot(args) -> int:
    import pandas as pd

    from bench_powerprop.figures import accuracy_vs_weights_remaining, relative_magnitudes, weight_histograms
    from bench_powerprop.powerprop import effective_weights
    from bench_powerprop.train import load_trained_model

    accuracy_vs_weights_remaining(pd.read_csv(args.runs), args.accuracy_figure, args.title)
    magnitudes = {}
    for path in args.models:
        model, spec = load_trained_model(path)
        magnitudes[spec["alpha"]] = relative_magnitudes([theta.numpy() for theta in effective_weights(model).values()])
    weight_histograms(magnitudes, args.histogram_figure, f"{args.title}: effective weights after training")
    return 0


def run_validate(args) -> int:
    from bench_powerprop.config import ConfigError, grid_cells, load_yaml, validate_config

    config: dict = {}
    for path in args.configfiles:
        _deep_update(config, load_yaml(path))
    try:
        validate_config(config)
    except ConfigError as error:
        print(f"bench_powerprop: {error}", file=sys.stderr)
        return 1
    cells = grid_cells(config)
    print(f"config ok: {len(cells)} training cells in {', '.join(config['active_experiments'])}")
    return 0


def _deep_update(base: dict, update: dict) -> dict:
    """Merge like Snakemake merges --configfile onto the Snakefile's configfile."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


COMMANDS = {
    "train": run_train,
    "prune-eval": run_prune_eval,
    "aggregate-oneshot": run_aggregate_oneshot,
    "figures-oneshot": run_figures_oneshot,
    "validate": run_validate,
}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)
