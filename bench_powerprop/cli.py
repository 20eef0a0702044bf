"""The one command line of the harness: ``python -m bench_powerprop <command> --help``.

The Snakemake rules call these commands; each is usable by hand to rerun one step.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
from pathlib import Path

DESCRIPTION = """\
bench_powerprop: reproduce Powerpropagation (Schwarz et al., NeurIPS 2021) and sparse-training baselines.

Normally you do not call these commands yourself: `make run` (or `snakemake -c all`) calls them
for every cell of the active experiments in configs/default.yaml. Each command's --help has an example.
Commands that take config files merge them over configs/default.yaml first, as `make run CONFIG=...`
and `snakemake --configfile ...` do; `--set KEY=VALUE ...` goes before or after the files.
"""

EXAMPLE_SPEC = (
    '{"experiment": "x", "method": "rigl", "variant": "default", "alpha": 2.0, "sparsity": 0.9, "seed": 0, '
    '"data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [300, 100]}, '
    '"train": {"steps": 100, "batch_size": 60, "lr": 0.1, "momentum": 0.9}, "method_options": {}}'
)
#: Where the examples of ``report``, ``claims`` and ``provenance`` read a run: ``make run`` of configs/default.yaml.
EXAMPLE_RUN = "results"
#: The lines of the top-level --help's example section (tests/test_cli_ux.py runs every example of every --help).
TOP_EXAMPLES = ("python -m bench_powerprop list experiments", "python -m bench_powerprop --version",
                "python -m bench_powerprop validate configs/quickstart.yaml --set experiments.oneshot_digits.train.lr=0.05")


def json_object(text: str) -> dict:
    """An argument holding a JSON object (argparse shows the error with the argument's name)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _command(commands, name: str, help_text: str, *examples: str, note: str = ""):
    return commands.add_parser(name, help=help_text, description=f"{help_text}{note}\n\n{examples_text(examples)}",
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def examples_text(examples) -> str:
    """The ``examples:`` section of a --help: one command a line (each one runs; a test runs them)."""
    return "examples:\n" + "\n".join(f"  {example}" for example in examples)


class VersionAction(argparse.Action):
    """``--version``: the package version and the git commit of the checkout (when it is one); git runs only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from bench_powerprop import __version__
        from bench_powerprop.io import git_commit

        commit = git_commit()
        short = commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")
        print(f"bench_powerprop {__version__}" + ("" if commit == "unknown" else f" (git {short})"))
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench_powerprop", description=DESCRIPTION,
                                     epilog=examples_text(TOP_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=VersionAction, help="the package version and git commit, then exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    train = _command(commands, "train", "train one grid cell (resumes from its checkpoints)",
                     f"python -m bench_powerprop train --spec '{EXAMPLE_SPEC}' --run-dir example/run --checkpoint-dir example/ckpt")
    train.add_argument("--spec", type=json_object, required=True,
                       help="the cell's full training spec as a JSON object (the workflow writes it: experiment, method, "
                            "variant, alpha, sparsity, seed, data, model, train, method_options; optional snapshot_steps, lineage)")
    train.add_argument("--run-dir", type=Path, required=True, help="where run.json, train_log.csv, model.pt, snapshots/, metrics.json go")
    train.add_argument("--checkpoint-dir", type=Path, required=True,
                       help="checkpoints and snapshots in progress (outside Snakemake's outputs, so a killed job resumes)")
    train.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    train.add_argument("--processes", type=int, default=1, metavar="N",
                       help="processes (one per GPU); N > 1 restarts the command under torchrun with N processes (DDP); "
                            "0 and 1 mean one process")
    train.add_argument("--mem-mb", type=int, default=None, metavar="MB",
                       help="the memory the job was given (the rule's resources.mem_mb), named if training runs out of it")

    prune = _command(commands, "prune-eval", "one-shot pruning sweep of a trained cell (no retraining)",
                     "python -m bench_powerprop prune-eval --model example/run/model.pt "
                     "--prune '{\"keep_levels\": [0.05, 0.1, 1.0], \"scope\": \"layerwise\"}' --out example/sweep.csv",
                     note="\n(the model of the `train` example; after make run: results/<experiment>/runs/<cell>/model.pt)")
    prune.add_argument("--model", type=Path, required=True, help="a trained cell's model.pt (its spec is inside)")
    prune.add_argument("--prune", type=json_object, required=True,
                       help="the experiment's prune config as JSON: keep_levels (list or {geomspace: [start, stop, num]}), "
                            "scope (layerwise|global), scorer (default magnitude), last_layer_keep_factor")
    prune.add_argument("--out", type=Path, required=True, help="CSV with one row per keep level")

    deploy = _command(commands, "deploy", "measured size and latency of an experiment's pruned networks in real sparse forms",
                      f"python -m bench_powerprop deploy --manifest {EXAMPLE_RUN}/oneshot_digits/manifest.json "
                      f"--out-dir {EXAMPLE_RUN}/oneshot_digits",
                      note="\n(after make run: it re-measures one experiment; docs/structure.md)")
    deploy.add_argument("--manifest", type=Path, required=True, help="the experiment's manifest.json (kind oneshot or sparse_training)")
    deploy.add_argument("--out-dir", type=Path, required=True,
                        help="the experiment's results directory (writes tables/deploy.csv, tables/deploy.md, figures/deploy_*.png)")
    deploy.add_argument("--repeats", type=int, default=3, help="timed repeats per form and batch size (min and median reported)")

    export = _command(commands, "export", "a trained cell's pruned model as a plain, loadable state_dict (θ, masks applied)",
                      "python -m bench_powerprop export example/run example/exported.pt --compress",
                      note="\n(the run of the `train` example; after make run: results/<experiment>/runs/<cell> with its h~ folder)")
    export.add_argument("cell_dir", type=Path, help="a trained cell's run directory (holds model.pt)")
    export.add_argument("out", type=Path, help="the file to write (torch.save of {format, spec, state_dict})")
    export.add_argument("--compress", action="store_true", help="store 2-D weights as CSR sparse tensors")

    report = _command(commands, "report", "tables or figures of one experiment from its manifest",
                      f"python -m bench_powerprop report tables --manifest {EXAMPLE_RUN}/oneshot_digits/manifest.json "
                      f"--out-dir {EXAMPLE_RUN}/oneshot_digits",
                      f"python -m bench_powerprop report figures --manifest {EXAMPLE_RUN}/oneshot_digits/manifest.json "
                      f"--out-dir {EXAMPLE_RUN}/oneshot_digits", note="\n(after make run: it redraws one experiment's tables or figures)")
    report.add_argument("what", choices=["tables", "figures", "solutions"],
                        help="tables (tidy rows, summary, Markdown), figures, or solutions (lottery: distances to the "
                             "pruning solution and seed-pair ensembles)")
    report.add_argument("--manifest", type=Path, required=True, help="the experiment's manifest.json (written by the workflow)")
    report.add_argument("--out-dir", type=Path, required=True, help="the experiment's results directory")
    report.add_argument("--published", nargs="?", default="", const="",
                        help="configs/published_results.csv (tables only; given without a value or empty: none)")
    report.add_argument("--published-curves", nargs="?", default="", const="",
                        help="configs/published_curves/synflow_cifar10.csv: per-run published curves drawn beside the PAI "
                             "figure as other-setting context (figures only; empty: none)")

    claims = _command(commands, "claims", "judge every claim of the source documents on the active experiments' tables",
                      f"python -m bench_powerprop claims --manifest {EXAMPLE_RUN}/oneshot_digits/manifest.json "
                      f"--manifest {EXAMPLE_RUN}/sparse_digits/manifest.json --csv example/claims.csv "
                      "--overview example/claims_overview.html --markdown example/claims.md "
                      "--page example/claims.html --figure example/claims_forest.png",
                      note="\n(after make run; without --manifest every claim is 'not run')")
    _manifests_argument(claims)
    claims.add_argument("--overview", type=Path, required=True,
                        help="HTML fragment: the short table (claim, experiment, effect, verdict) the report's front page shows")
    claims.add_argument("--figure", type=Path, help="the forest plot (PNG): per comparison, per-seed effects and interval")
    _page_arguments(claims, "one row per (claim, experiment, comparison): effect, interval, seeds per group, verdict, source")

    provenance = _command(commands, "provenance", "the code, packages, hosts and config hash behind the results",
                          f"python -m bench_powerprop provenance --manifest {EXAMPLE_RUN}/oneshot_digits/manifest.json "
                          "--config-hash 0123abcd --git-commit 98bf22c --csv example/provenance.csv "
                          "--markdown example/provenance.md --page example/provenance.html", note="\n(after make run)")
    _manifests_argument(provenance)
    provenance.add_argument("--config-hash", required=True, help="hash of the whole config the workflow ran with")
    provenance.add_argument("--git-commit", required=True, help="the workflow's git commit (\"-dirty\" when it had uncommitted changes)")
    provenance.add_argument("--override", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                            help="a --set override the config was made with (once per override; make run SET=...)")
    _page_arguments(provenance, "one row per (scope, item): scope 'report' or an experiment")

    validate = _command(commands, "validate", "validate config files (merged in order) and count the training cells",
                        "python -m bench_powerprop validate --set 'active_experiments=[sparse_digits]' "
                        "experiments.sparse_digits.train.lr=0.05 'experiments.sparse_digits.grid[1].seed=[0,1,2]'",
                        "python -m bench_powerprop validate configs/quickstart.yaml",
                        "python -m bench_powerprop validate --set experiments.oneshot_digits.train.lr=0.05 configs/quickstart.yaml",
                        "python -m bench_powerprop validate configs/quickstart.yaml --set experiments.oneshot_digits.train.lr=0.05 "
                        "--output lr05 --print-results-dir")
    _config_arguments(validate)
    validate.add_argument("--write-config", type=Path, metavar="PATH",
                          help="also write the merged config (files and overrides) to PATH, for snakemake --configfile PATH, "
                               "and the overrides applied to PATH.overrides.json (what the provenance page lists)")
    validate.add_argument("--print-results-dir", action="store_true",
                          help="print only the folder of the run's outputs on stdout (results_dir, or results_dir/NAME "
                               "with --output NAME; the summary goes to stderr); for make run")

    needs = _command(commands, "needs", "the optional extras (vision, tensorboard) the active experiments need, one a line",
                     "python -m bench_powerprop needs configs/quickstart.yaml --set experiments.oneshot_digits.train.tensorboard=true")
    _config_arguments(needs)

    status = _command(commands, "status", "count per experiment the cells up to date, missing, damaged or stale by code; "
                      "exit 1 when a run has work to do",
                      "python -m bench_powerprop status configs/quickstart.yaml",
                      "python -m bench_powerprop status configs/quickstart.yaml --set experiments.oneshot_digits.train.lr=0.05",
                      "python -m bench_powerprop status configs/quickstart.yaml --set experiments.oneshot_digits.train.lr=0.05 "
                      "--output lr05")
    _config_arguments(status)
    status.add_argument("--verbose", "-v", action="store_true", help="list every cell that needs work (default: when at most 10)")
    status.add_argument("--stale-code-targets", action="store_true",
                        help="print only the metrics.json of every cell stale by code, one per line (for snakemake --forcerun)")

    listing = _command(commands, "list", "the experiments of a config, registered methods, scorers, datasets or models "
                       "with their options, or the train settings",
                       "python -m bench_powerprop list experiments", "python -m bench_powerprop list experiments configs/quickstart.yaml",
                       "python -m bench_powerprop list methods")
    listing.add_argument("registry", choices=["experiments", "methods", "scorers", "datasets", "models", "train"],
                         help="what to list (experiments: every experiment of the config, active ones marked; "
                              "train: every setting of a config's train block)")
    _config_arguments(listing, required=False)

    snake = _command(commands, "run-snakemake", "run Snakemake with one progress line; its whole log goes to a file",
                     "python -m bench_powerprop run-snakemake --log example/snakemake.log -- -n -c1 --configfile configs/quickstart.yaml",
                     note="\n(make run runs Snakemake through this: jobs done/total, cells trained, failures, elapsed and time "
                          "left; the exit status is Snakemake's)")
    snake.add_argument("--log", type=Path, required=True, help="where Snakemake's whole output goes")
    snake.add_argument("arguments", nargs=argparse.REMAINDER, help="-- then Snakemake's arguments")

    readme = _command(commands, "readme", "write README.md's default-run block (verdict counts, claims table) from a run's outputs",
                      "python -m bench_powerprop readme --check")
    readme.add_argument("--results", type=Path, default=None, metavar="DIR",
                        help="a finished run's results folder (default: the committed reference outputs, docs/default_run/)")
    readme.add_argument("--update-reference", action="store_true",
                        help="first copy the outputs the block reads from --results into docs/default_run/ (then commit "
                             "them with README.md)")
    readme.add_argument("--check", action="store_true", help="write nothing; exit 1 naming the first line README.md differs in")
    readme.add_argument("--readme", type=Path, default=None, help=argparse.SUPPRESS)

    beton = _command(commands, "beton", "write FFCV .beton files (CIFAR-10 pickles or an ImageFolder tree)",
                     "python -m bench_powerprop beton -- write-cifar10 --help",
                     note="\n(e.g. beton write-cifar10 --src cifar-10-batches-py --split train --out train.beton, "
                          "once CIFAR-10's python pickles are downloaded)")
    beton.add_argument("arguments", nargs=argparse.REMAINDER, help="write ... | write-cifar10 ... | write-imagenet ... (`beton -- --help`)")
    return parser


def _config_arguments(parser, required: bool = True) -> None:
    parser.add_argument("configfiles", type=Path, nargs="*",
                        help=f"YAML configs merged over {DEFAULT_CONFIG} (always first, as make run and snakemake do); "
                             "later files override earlier ones" + ("" if required else "; none: the default alone"))
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override one setting after the files (before or after them on the command line), in "
                             "OmegaConf's dotlist syntax (as Hydra): "
                             "experiments.sparse_digits.train.lr=0.05 'experiments.sparse_digits.grid[1].seed=[0,1,2]'; "
                             "values are read as YAML (0.05 a number, [0,1] a list) and validated like the files")
    parser.add_argument("--output", default=None, metavar="NAME",
                        help="this run's own output folder, <results_dir>/NAME: its tables, figures, claims page and report "
                             "(the config's run_name); the cells stay shared below results_dir by spec hash, so an unchanged "
                             "cell is not retrained and no other name's report is replaced; empty: the config's run_name, if any")
    parser.add_argument("--set-line", default="", metavar="'KEY=VALUE ...'",
                        help="overrides in one string, split into words as a shell would (quotes keep spaces) but never "
                             "evaluated ($(...), backticks and ; stay text): how make run passes SET=...")


#: The config every command merges first (the Snakefile's configfile).
DEFAULT_CONFIG = "configs/default.yaml"


def config_files(args) -> list[Path]:
    """configs/default.yaml, then the files named (a --set before the files took them in too: a word without ``=``
    that names a .yaml file or an existing path is a file). The default is not merged twice when named first."""
    from bench_powerprop.config import REPO_ROOT

    default = REPO_ROOT / DEFAULT_CONFIG
    files = list(getattr(args, "configfiles", []))
    overrides = []
    for word in getattr(args, "overrides", []):
        is_file = "=" not in word and (word.endswith((".yaml", ".yml")) or Path(word).exists())
        (files if is_file else overrides).append(Path(word) if is_file else word)
    args.overrides = overrides
    if files and files[0].resolve() == default:
        files = files[1:]
    return [default, *files]


def _manifests_argument(parser) -> None:
    parser.add_argument("--manifest", type=Path, action="append", default=[],
                        help="an active experiment's manifest.json (once per experiment; none: every claim is 'not run')")


def _page_arguments(parser, csv_help: str) -> None:
    parser.add_argument("--csv", type=Path, required=True, help=f"the table as CSV: {csv_help}")
    parser.add_argument("--markdown", type=Path, required=True, help="the same as a Markdown page")
    parser.add_argument("--page", type=Path, required=True, help="the same as a standalone HTML page (what the Snakemake report shows)")


def torchrun_command(argv: list[str], processes: int) -> list[str]:
    """The same ``train`` command, without ``--processes``, under ``torch.distributed.run`` with one process per GPU."""
    arguments, skip_value = [], False
    for argument in argv:
        if skip_value or argument.startswith("--processes="):
            skip_value = False
            continue
        skip_value = argument == "--processes"
        if not skip_value:
            arguments.append(argument)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "bench_powerprop", *arguments]


def run_train(args) -> int:
    from bench_powerprop import numerics
    from bench_powerprop.cell_spec import CellSpec, SpecError
    from bench_powerprop.options import OptionError

    try:
        spec = CellSpec.from_dict(args.spec)  # the job's one parse of its spec (torch-free)
    except (SpecError, OptionError) as error:
        print(f"bench_powerprop: {error}", file=sys.stderr)
        return 2
    numerics.apply(spec.train.numerics, spec.train.threads)  # before torch is imported, here or in the server it is forked from
    if args.processes <= 1 and spec.train.device == "cpu":
        status = run_via_server(args.argv)
        if status is not None:
            return status
    from bench_powerprop.distributed import launched_by_torchrun

    if args.processes > 1 and not launched_by_torchrun():
        command = torchrun_command(sys.argv[1:], args.processes)
        os.execv(command[0], command)
    from bench_powerprop.training.checkpointing import CheckpointDirectoryError
    from bench_powerprop.training.lineage import LineageError
    from bench_powerprop.training.trainer import train_cell

    try:
        metrics = train_cell(spec, args.run_dir, args.checkpoint_dir, progress=not args.no_progress)
    except (SpecError, OptionError, CheckpointDirectoryError, LineageError) as error:
        print(f"bench_powerprop: {error}", file=sys.stderr)
        return 2
    status = "DIVERGED (" + metrics["diverged_reason"] + ")" if metrics["diverged"] else ("at chance" if metrics["collapsed"] else "ok")
    print(f"test accuracy {metrics['test_accuracy']:.4f}, sparsity {metrics['actual_sparsity']:.4f}: {status}")
    return 0


def run_via_server(argv: list[str]) -> int | None:
    """Run this command in a worker forked from the workflow's pre-warmed server (no torch import here); None: none usable."""
    from bench_powerprop.training.server_client import run_via_server as forked

    return forked(argv)


def run_prune_eval(args) -> int:
    from bench_powerprop import numerics
    from bench_powerprop.io import read_json

    run_file = Path(args.model).parent / "run.json"  # the trained cell's spec: its numerics
    numerics.apply(*numerics.of_spec(read_json(run_file)["spec"] if run_file.exists() else {}))
    status = run_via_server(args.argv)
    if status is not None:
        return status
    from bench_powerprop.evaluation import oneshot_sweep
    from bench_powerprop.io import write_csv_atomic
    from bench_powerprop.training.lineage import LineageError

    try:
        rows = oneshot_sweep(args.model, args.prune)
    except LineageError as error:
        print(f"bench_powerprop: {error}", file=sys.stderr)
        return 2
    write_csv_atomic(args.out, rows)
    print(rows[["keep", "test_accuracy"]].to_string(index=False))
    return 0


def run_report(args) -> int:
    from bench_powerprop import numerics
    from bench_powerprop.io import read_json

    numerics.apply(numerics.DEFAULT, 1)  # numpy's SIMD dispatch and BLAS of the statistics, pinned before they load
    from bench_powerprop.reporting import reports

    manifest = read_json(args.manifest)
    if args.what == "tables":
        print(reports.write_tables(manifest, args.out_dir, args.published))
    elif args.what == "solutions":
        reports.write_solutions(manifest, args.out_dir)
    else:
        reports.write_figures(manifest, args.out_dir, args.published_curves)
    return 0


def run_claims(args) -> int:
    from bench_powerprop import numerics

    numerics.apply(numerics.DEFAULT, 1)  # numpy's SIMD dispatch and BLAS of the statistics, pinned before they load
    from bench_powerprop.reporting import claims

    print(claims.write_claims(args.manifest, args.csv, args.overview, args.markdown, args.page, args.figure))
    return 0


def run_provenance(args) -> int:
    from bench_powerprop.reporting import provenance

    print(provenance.write_provenance(args.manifest, args.config_hash, args.git_commit, args.csv, args.markdown, args.page,
                                      args.overrides))
    return 0


def validated_config(args) -> dict | None:
    """The merged, validated config of ``configfiles`` and ``--set``; None (the error printed) when invalid."""
    from bench_powerprop.config import ConfigError, load_configs, split_overrides, validate_config

    try:
        args.configfiles = config_files(args)
        args.overrides = [*args.overrides, *split_overrides(args.set_line)]
        config = load_configs(args.configfiles, args.overrides)
        if args.output:  # a string as typed (--set run_name=1e5 would read a number); empty: make run without OUTPUT
            config["run_name"] = args.output
        validate_config(config)
    except ConfigError as error:
        print(f"bench_powerprop: {error}", file=sys.stderr)
        return None
    return config


def shared_results_warning(args, config: dict) -> str | None:
    """A config other than the default that writes into the default run's results_dir replaces its claims page and tables."""
    from bench_powerprop.config import REPO_ROOT, load_yaml

    default_path = REPO_ROOT / "configs" / "default.yaml"
    default_results = load_yaml(default_path).get("results_dir", "results")
    other = args.overrides or any(path.resolve() != default_path for path in args.configfiles)
    if not other or config.get("results_dir", "results") != default_results or config.get("run_name"):
        return None
    return (f"bench_powerprop: warning: this config writes into {default_results}/, the default run's results (its claims page "
            f"and tables would be replaced); give it its own output folder (make run OUTPUT=mine, or --output mine: "
            f"{default_results}/mine/) or its own results_dir")


def run_validate(args) -> int:
    from bench_powerprop.config import grid_cells

    config = validated_config(args)
    if config is None:
        return 1
    warning = shared_results_warning(args, config)
    if warning:
        print(warning, file=sys.stderr)
    if args.write_config:
        from bench_powerprop.config import write_config

        write_config(args.write_config, config, args.overrides)
    cells = grid_cells(config)
    summary = f"config ok: {len(cells)} training cells in {', '.join(config['active_experiments'])}"
    print(summary, file=sys.stderr if args.print_results_dir else sys.stdout)
    if args.print_results_dir:
        from bench_powerprop.config import outputs_dir

        print(outputs_dir(config))
    return 0


def extras_needed(config: dict) -> dict[str, str]:
    """The optional extras (pyproject.toml) the active experiments need, each with the first reason."""
    from bench_powerprop.data.datasets import DATASETS

    needed: dict[str, str] = {}
    for name in config["active_experiments"]:
        experiment = config["experiments"][name]
        dataset = experiment["data"]["name"]
        if DATASETS.options(dataset).beton_stems():
            needed.setdefault("vision", f"experiment {name} reads {dataset} through FFCV .beton files")
        if experiment["train"].get("tensorboard"):
            needed.setdefault("tensorboard", f"experiment {name} sets train.tensorboard: true")
    return needed


def run_needs(args) -> int:
    config = validated_config(args)
    if config is None:
        return 1
    for extra, reason in extras_needed(config).items():
        print(extra)
        print(f"bench_powerprop: needs the {extra} extra: {reason}", file=sys.stderr)
    return 0


STATES = ("missing", "damaged", "stale (code)")
#: ``status`` lists every cell that needs work when there are at most this many (else with ``--verbose``)
STATUS_DETAIL_LINES = 10


def run_status(args) -> int:
    """A line per experiment (cells up to date, missing, damaged, stale; tables not built), the cells that need work
    when few (all with ``--verbose``), and the command that retrains the cells stale by code. Exit 1 when a run has work."""
    from bench_powerprop.plan import Plan

    config = validated_config(args)
    if config is None:
        return 1
    plan = Plan(config)
    states = plan.cell_states()
    stale_code = [f"{plan.run_dir(cell)}/metrics.json" for cell, state, _ in states if state == "stale (code)"]
    if args.stale_code_targets:
        print("\n".join(stale_code))
        return 0
    unbuilt = 0
    for experiment in plan.grids:
        found = [state for cell, state, _ in states if cell.experiment == experiment]
        outputs = plan.outputs_state(experiment)
        unbuilt += outputs is not None
        print(f"{experiment}: {status_counts(len(plan.cells_of(experiment)), found)}" + (f"; {outputs}" if outputs else ""))
    if states and (args.verbose or len(states) <= STATUS_DETAIL_LINES):
        for cell, state, reason in states:
            print(f"  {plan.run_dir(cell)}: {state}: {reason}")
    elif states:
        print(f"  ({len(states)} cells need work: --verbose lists them)")
    print(f"all: {status_counts(len(plan.cells), [state for _, state, _ in states])}")
    if stale_code:
        print(f"retrain the cells stale by code: {retrain_command(args, stale_code)}")
    warning = mixed_numerics(plan)
    if warning:
        print(warning)
    if states or unbuilt:
        print("a run (make run, or snakemake with these configs) brings them up to date")
    return 1 if states or unbuilt else 0


def status_counts(total: int, found: list[str]) -> str:
    counts = ", ".join(f"{found.count(state)} {state}" for state in STATES if found.count(state))
    return f"{total} cells: {total - len(found)} up to date" + (f", {counts}" if counts else "")


def mixed_numerics(plan) -> str | None:
    """The warning when the finished cells of the results folder were made under different numerics."""
    from bench_powerprop.hardware import mixed_numerics_warning

    runs = {}
    for cell in plan.cells:
        path = Path(plan.run_dir(cell)) / "run.json"
        try:
            runs[str(path.parent)] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # not trained yet, or damaged (the states above say so)
    return mixed_numerics_warning(runs)


def retrain_command(args, targets: list[str]) -> str:
    """``snakemake --forcerun`` of ``targets`` with the config ``status`` read (``--set`` overrides written out first)."""
    import shlex

    configfiles = [str(path) for path in args.configfiles[1:]]  # configs/default.yaml: the Snakefile's own
    prefix = ""
    if args.overrides:
        merged = "merged_config.yaml"
        prefix = (f"python -m bench_powerprop validate {' '.join(map(shlex.quote, configfiles))} --set "
                  f"{' '.join(map(shlex.quote, args.overrides))} --write-config {merged} && ")
        configfiles = [merged]
    configs = " ".join(f"--configfile {shlex.quote(path)}" for path in configfiles)
    return f"{prefix}snakemake -c all {configs} --forcerun {' '.join(map(shlex.quote, targets))}"


def run_list(args) -> int:
    import shutil

    width = min(shutil.get_terminal_size().columns, 120)
    if args.registry == "experiments":
        return list_experiments(args, width)
    if args.registry == "train":
        from bench_powerprop.training.options import TrainOptions

        print("train: every setting of an experiment's train block")
        print_options(TrainOptions, width)
        return 0
    registry = registry_named(args.registry)
    for name in registry.names():
        entry = registry.get(name)
        print(textwrap.fill(f"{name}: {summary_of(name, entry)}", width, subsequent_indent="  "))
        print_options(entry.Options, width)
    return 0


def list_experiments(args, width: int) -> int:
    """Every experiment of the merged config: name, kind, data, model, cells when active, and its description."""
    from bench_powerprop.config import grid_cells

    config = validated_config(args)
    if config is None:
        return 1
    active = config["active_experiments"]
    cells = grid_cells(config)
    names = " + ".join(os.path.relpath(path) if path.is_absolute() else str(path) for path in args.configfiles)
    print(f"experiments of {names} (* active: make run trains these)")
    for name, experiment in config["experiments"].items():
        count = sum(cell.experiment == name for cell in cells)
        where = f"{experiment.get('kind', '?')}, {experiment['data']['name']} / {experiment['model']['name']}"
        cells_text = f", {count} training cells" if name in active else ""
        print(f"{'*' if name in active else ' '} {name} ({where}{cells_text})")
        description = " ".join(str(experiment.get("description", "")).split())
        if description:
            print(textwrap.fill(description, width, initial_indent="    ", subsequent_indent="    "))
    return 0


def print_options(options, width: int) -> None:
    for option, default, doc in options.describe():
        print(textwrap.fill(f"{option} (default {json.dumps(default)}): {doc}", width,
                            initial_indent="    ", subsequent_indent="      "))


def summary_of(name: str, entry) -> str:
    """The first paragraph of the entry's module docstring, whole, on one line, without its leading ``name``:."""
    doc = (sys.modules[entry.__module__].__doc__ or entry.__doc__ or "").strip()
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    return paragraph.removeprefix(f"``{name}``:").strip().replace("``", "`") or name


def registry_named(name: str):
    if name == "methods":
        from bench_powerprop.methods import METHODS as registry
    elif name == "scorers":
        from bench_powerprop.scoring import SCORERS as registry
    elif name == "datasets":
        from bench_powerprop.data.datasets import DATASETS as registry
    else:
        from bench_powerprop.models import MODELS as registry
    return registry


def run_run_snakemake(args) -> int:
    from bench_powerprop.snakemake_progress import run

    arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
    return run(arguments, args.log)


def run_readme(args) -> int:
    from bench_powerprop.reporting import readme

    try:
        if args.update_reference:
            if args.results is None:
                raise readme.ReadmeError("--update-reference: needs --results DIR (the run to take the outputs from)")
            readme.update_reference(args.results, readme.REFERENCE_DIR)
            source = readme.REFERENCE_DIR
        else:
            source = readme.REFERENCE_DIR if args.results is None else args.results / "reproduction"
        up_to_date, message = readme.regenerate(args.readme or readme.README, source, args.check)
    except readme.ReadmeError as error:
        print(f"bench_powerprop: {error}", file=sys.stderr)
        return 2
    print(message, file=sys.stdout if up_to_date else sys.stderr)
    return 0 if up_to_date else 1


def run_beton(args) -> int:
    from bench_powerprop.data.ffcv_io import main as ffcv_main

    arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
    return ffcv_main(arguments)


def run_deploy(args) -> int:
    from bench_powerprop.deploy import write_deploy
    from bench_powerprop.io import read_json

    if args.repeats < 1:
        print(f"bench_powerprop: deploy --repeats: must be >= 1, got {args.repeats}", file=sys.stderr)
        return 2
    print(write_deploy(read_json(args.manifest), args.out_dir, args.repeats))
    return 0


def run_export(args) -> int:
    from bench_powerprop.deploy import export

    if not (args.cell_dir / "model.pt").is_file():
        print(f"bench_powerprop: export: {args.cell_dir}/model.pt does not exist (not a trained cell's run directory)",
              file=sys.stderr)
        return 2
    payload = export(args.cell_dir, args.out, args.compress)
    print(f"exported {args.cell_dir} ({payload['format']}) to {args.out}")
    return 0


COMMANDS = {
    "train": run_train,
    "deploy": run_deploy,
    "export": run_export,
    "prune-eval": run_prune_eval,
    "report": run_report,
    "claims": run_claims,
    "provenance": run_provenance,
    "validate": run_validate,
    "needs": run_needs,
    "status": run_status,
    "list": run_list,
    "run-snakemake": run_run_snakemake,
    "beton": run_beton,
    "readme": run_readme,
}


def main(argv=None) -> int:
    from bench_powerprop.io import WriteError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # `... | head` closed stdout: stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit-time flush must not raise again
        return 141
    except WriteError as error:
        print(f"bench_powerprop: {args.command}: {error}", file=sys.stderr)
        return 4
    except ModuleNotFoundError as error:
        module = (error.name or "").split(".")[0]
        extra = EXTRA_MODULES.get(module)
        if extra is None:
            raise
        print(f"bench_powerprop: {args.command}: needs the {extra} extra (module {module!r} is not installed); "
              f"install it with `make setup-{extra}`", file=sys.stderr)
        return 5
    except (MemoryError, ImportError, RuntimeError) as error:
        if not out_of_memory(error):
            raise
        print(f"bench_powerprop: {args.command}: out of memory ({type(error).__name__}: {str(error).splitlines()[0]}); "
              f"{memory_hint(args)}", file=sys.stderr)
        return 3


#: Modules of the optional extras (pyproject.toml), each with the extra whose `make setup-<extra>` installs it.
EXTRA_MODULES = {"ffcv": "vision", "cv2": "vision", "tensorboard": "tensorboard"}
#: What an allocation failure says: torch's CPU allocator, CUDA, or the loader mapping a library into a full memory.
OUT_OF_MEMORY_TEXTS = ("can't allocate memory", "out of memory", "failed to map segment", "cannot allocate memory")


def out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or any(text in str(error).lower() for text in OUT_OF_MEMORY_TEXTS)


def memory_hint(args) -> str:
    """What the job was given and what to change: the rule's ``mem_mb`` is the experiment's ``resources.mem_mb``."""
    given = getattr(args, "mem_mb", None)
    asked = f"it was given {given} MB (resources.mem_mb)" if given else "it ran under a memory limit"
    return f"{asked}; the job needs more: raise the experiment's resources.mem_mb (or the limit) and rerun"
