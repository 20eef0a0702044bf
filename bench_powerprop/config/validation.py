"""Config validation, before any job starts.

``validate_config(config)`` checks, in order: every number is finite and no string breaks a report's script
block; the JSON schema (``workflow/schemas/config.schema.yaml``, its ``train`` and ``prune`` sections generated
from the typed options: ``bench_powerprop.config.schema``); then what a schema cannot say — each experiment's
kind, dataset, model and method options against the typed options declared next to their registration (closed:
an unknown key is an error), variants, lineage references, and data paths. The first problem is raised as a
``ConfigError`` whose text is one line naming the field. Torch-free.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
from pathlib import Path

from bench_powerprop.cells import EXPERIMENT_PATTERN
from bench_powerprop.config.grid import ExperimentGrid
from bench_powerprop.config.loading import ConfigError, check_raw_configfiles, field_path
from bench_powerprop.config.prune import prune_options
from bench_powerprop.config.schema import SCHEMA_PATH, config_schema
from bench_powerprop.options import OptionError


def non_finite_numbers(value, path=()) -> list[str]:
    """Paths of NaN/inf values (YAML ``.nan``/``.inf``), which JSON schema's bounds let through."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{field_path(path)}: {value!r} is not a finite number"]
    if isinstance(value, dict):
        return [problem for key, item in value.items() for problem in non_finite_numbers(item, (*path, key))]
    if isinstance(value, list):
        return [problem for i, item in enumerate(value) for problem in non_finite_numbers(item, (*path, i))]
    return []


def schema_errors(config: dict, schema: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda error: (list(error.absolute_path), error.message))
    return [_schema_message(error) for error in errors]


def _schema_message(error) -> str:
    """The most specific reason: for ``anyOf``/``oneOf`` the alternative that got furthest."""
    import jsonschema

    leaf = jsonschema.exceptions.best_match(error.context) if error.context else error
    if error.context and error.validator in ("anyOf", "oneOf"):
        deepest = max(error.context, key=lambda sub: (len(sub.absolute_path), sub.validator != "type"))
        leaf = deepest if deepest.validator != "type" else leaf
    return f"{field_path(leaf.absolute_path)}: {leaf.message}"


#: What ends or unbalances an HTML script block: Snakemake's report embeds config values (rule params, paths) in one
#: unescaped, so a value holding ``</script><script>...`` would run in the report of whoever opens it.
SCRIPT_BREAKING = re.compile(r"</|<!--", re.IGNORECASE)


def markup_problems(value, path=()) -> list[str]:
    """Paths of keys or strings holding ``</`` or ``<!--`` (``<`` alone, as in ``|theta| < 0.01``, is fine)."""
    if isinstance(value, str) and SCRIPT_BREAKING.search(value):
        found = SCRIPT_BREAKING.search(value).group()
        return [f"{field_path(path)}: {value!r} holds {found!r}, which would end a script block of Snakemake's HTML report "
                "(it embeds config values unescaped); write it without"]
    if isinstance(value, dict):
        return [problem for key, item in value.items()
                for problem in (markup_problems(key, path) or markup_problems(item, (*path, key)))]
    if isinstance(value, list):
        return [problem for i, item in enumerate(value) for problem in markup_problems(item, (*path, i))]
    return []


def validate_config(config: dict, schema_path=SCHEMA_PATH) -> None:
    """Raise ConfigError with the first problem: finiteness and markup, then the schema, then semantic checks."""
    problems = non_finite_numbers(config) + markup_problems(config)
    if not problems:
        problems = schema_errors(config, config_schema(schema_path))
    if not problems:
        problems = semantic_errors(config)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(f"invalid config: {problems[0]}{more}")


def validate_or_exit(config: dict, configfiles=(), schema_path=SCHEMA_PATH) -> None:
    """For Snakefiles: the raw ``configfiles`` Snakemake was given, then ``config``; print the one-line error and exit
    non-zero before any job is planned."""
    try:
        check_raw_configfiles(configfiles)
        validate_config(config, schema_path)
    except ConfigError as error:
        print(f"bench_powerprop: {error}", file=sys.stderr)
        sys.exit(1)


def semantic_errors(config: dict) -> list[str]:
    errors = output_directory_errors(config) + run_name_errors(config) + option_like_errors(config)
    experiments = config["experiments"]
    for name in config["active_experiments"]:
        if name not in experiments:
            errors.append(f"active_experiments: {name!r} is not defined under experiments (defined: {sorted(experiments)})")
    for name, experiment in experiments.items():
        if not re.fullmatch(EXPERIMENT_PATTERN, name):
            errors.append(f"experiments.{name}: experiment names use letters, digits and _ only")
            continue
        try:
            check_experiment(name, experiment, active=name in config["active_experiments"])
            check_reference(name, experiment, experiments, config["active_experiments"])
        except (ConfigError, OptionError) as error:
            errors.append(str(error))
    return errors


#: Characters a results or checkpoint directory may not hold: control characters (newline, NUL, ...) make no
#: sense in a path, and braces would be read as Snakemake wildcards. Any other character (spaces, ``$``, ``;``)
#: is safe: every rule quotes every path it puts on a command line.
FORBIDDEN_PATH_CHARACTERS = re.compile(r"[\x00-\x1f\x7f{}]")
OUTPUT_DIRECTORIES = {"results_dir": "results", "checkpoint_dir": "checkpoints"}
INPUT_FILES = ("published_results", "published_curves")


def output_directory_errors(config: dict) -> list[str]:
    """``results_dir`` and ``checkpoint_dir``: non-empty, plain path text that no command reads as an option, and
    apart from each other once symlinks are resolved (the repair of a damaged cell deletes its run directory; a
    checkpoint inside it would go too)."""
    paths = {key: config.get(key, default) for key, default in OUTPUT_DIRECTORIES.items()}
    for key, path in paths.items():
        if not isinstance(path, str):
            continue  # the schema names it
        if not path.strip():
            return [f"{key}: empty; name a directory (default {OUTPUT_DIRECTORIES[key]!r})"]
        bad = FORBIDDEN_PATH_CHARACTERS.search(path)
        if bad:
            return [f"{key}: {path!r} holds {bad.group()!r}; a directory name has no control characters or braces"]
        if path.startswith("-"):
            return [option_like(key, path)]
    if not all(isinstance(path, str) for path in paths.values()):
        return []
    results, checkpoints = (os.path.realpath(path) for path in paths.values())
    if results == checkpoints or _inside(checkpoints, results) or _inside(results, checkpoints):
        return [f"checkpoint_dir: {paths['checkpoint_dir']!r} overlaps results_dir {paths['results_dir']!r} "
                f"({checkpoints} and {results} once symlinks are resolved); checkpoints live outside the results "
                "(a damaged cell's repair deletes its run directory)"]
    return []


#: A run name: one plain folder name (no separator, no leading dot or dash), so ``{results_dir}/{run_name}`` stays inside
#: results_dir and no command reads it as an option.
RUN_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Folders of results_dir that hold something else than a run's outputs (the experiments' own folders are checked too).
RESERVED_RUN_NAMES = ("reproduction", "datasets", "logs")


def run_name_errors(config: dict) -> list[str]:
    """``run_name``: one plain folder name that is neither an experiment's folder nor another folder of results_dir."""
    name = config.get("run_name")
    if not isinstance(name, str) or name == "":
        return []  # absent or empty: the outputs go to results_dir itself (the schema names a wrong type)
    if not RUN_NAME_PATTERN.fullmatch(name):
        return [f"run_name: {name!r} is not a plain folder name (letters, digits, '_', '.', '-', starting with a letter "
                "or digit, at most 64 characters)"]
    if name in config.get("experiments", {}) or name in RESERVED_RUN_NAMES:
        return [f"run_name: {name!r} is the name of another folder of results_dir (an experiment's, or one of "
                f"{', '.join(RESERVED_RUN_NAMES)}); choose another name"]
    return []


def outputs_dir(config: dict) -> str:
    """Where a run writes its tables, figures, claims page and report: ``{results_dir}/{run_name}``, or results_dir
    itself without a run name. The cells are always below results_dir (shared by every run name, by spec hash)."""
    results = config.get("results_dir", OUTPUT_DIRECTORIES["results_dir"])
    name = config.get("run_name")
    return os.path.join(results, name) if name else results


def option_like(key: str, path: str) -> str:
    """The error of a path that a command would read as an option (``-rdash``: ``--run-dir -rdash`` fails late)."""
    return f"{key}: {path!r} starts with '-', which a command reads as an option; write ./{path}"


def option_like_errors(config: dict) -> list[str]:
    return [option_like(key, config[key]) for key in INPUT_FILES if str(config.get(key, "")).startswith("-")]


def _inside(path: str, directory: str) -> bool:
    return os.path.commonpath([path, directory]) == directory


def check_experiment(name: str, experiment: dict, active: bool) -> None:
    from bench_powerprop.data.datasets import resolve_data_config
    from bench_powerprop.models import resolve_model_config
    from bench_powerprop.pipelines import PIPELINES

    where = f"experiments.{name}"
    pipeline = PIPELINES.get(experiment["kind"])
    if pipeline is None:
        raise ConfigError(f"{where}.kind: unknown pipeline shape {experiment['kind']!r} (known: {', '.join(sorted(PIPELINES))})")
    for section in pipeline.requires:
        if section not in experiment:
            raise ConfigError(f"{where}.{section}: required by kind {experiment['kind']!r}")
    if pipeline.requires_train_any and not set(pipeline.requires_train_any) & set(experiment["train"]):
        raise ConfigError(f"{where}.train: kind {experiment['kind']!r} needs one of {', '.join(pipeline.requires_train_any)}")
    grid = ExperimentGrid(name, experiment)
    batch_size = grid.train.batch_size  # the typed train section, checked before the sections that depend on it
    data = resolve_data_config(experiment["data"], f"{where}.data")
    check_batch_size(experiment["data"], batch_size, where)
    check_model_size(resolve_model_config(experiment["model"], f"{where}.model"), f"{where}.model")
    if "prune" in experiment:
        prune_options(experiment["prune"], f"{where}.prune")
    grid.check_options()
    grid.check_lineage()
    if active:
        check_data_paths(data, f"{where}.data")


#: Weights a model may hold: 2^32 float32 weights are 16 GiB, with gradients and optimizer state several times more.
MAX_PARAMETERS = 2**32
#: Model options that list layer widths, each with the weights per pair of adjacent widths (a convolution's kernel).
WIDTH_OPTIONS = {"hidden": lambda model: 1, "channels": lambda model: model.get("kernel_size", 1) ** 2}


def parameter_lower_bound(model: dict) -> int:
    """Weights the hidden layers alone hold (adjacent widths multiplied, every unit one weight at least): a bound
    known without the data's shape, so a model too large to allocate is named before any job starts."""
    bound = 0
    for key, per_pair in WIDTH_OPTIONS.items():
        widths = model.get(key)
        if isinstance(widths, (list, tuple)) and all(isinstance(width, int) for width in widths):
            bound += sum(widths) + per_pair(model) * sum(a * b for a, b in itertools.pairwise(widths))
    return bound


def check_model_size(model: dict, where: str) -> None:
    bound = parameter_lower_bound(model)
    if bound > MAX_PARAMETERS:
        raise ConfigError(f"{where}: at least {bound:.3g} weights ({bound * 4 / 2**30:.3g} GiB as float32), more than "
                          f"{MAX_PARAMETERS:.3g}; make the layers narrower")


def check_batch_size(data: dict, batch_size: int, where: str) -> None:
    from bench_powerprop.data.datasets import DATASETS

    examples = DATASETS.options(data["name"]).parse(data, f"{where}.data").training_examples()
    if examples is not None and batch_size > examples:
        raise ConfigError(f"{where}.train.batch_size: {batch_size} exceeds the {examples} training examples of {data['name']}")


REFERENCE_SETTINGS = ("data", "model", "train")


def check_reference(name: str, experiment: dict, experiments: dict, active: list[str]) -> None:
    """``reference``: another experiment trained on the same data, model and budget (so its rows are comparable).

    The budgets are compared only when both run: a reference that is not active contributes no rows.
    """
    reference = experiment.get("reference")
    if reference is None:
        return
    where = f"experiments.{name}.reference.experiment"
    other = experiments.get(reference["experiment"])
    if other is None or reference["experiment"] == name:
        raise ConfigError(f"{where}: {reference['experiment']!r} is not another experiment of this config")
    if name not in active or reference["experiment"] not in active:
        return
    for section in REFERENCE_SETTINGS:
        if _resolved(section, other) != _resolved(section, experiment):
            raise ConfigError(f"{where}: {reference['experiment']!r} has a different {section} section, so its rows "
                              f"are not comparable with {name!r}")


def _resolved(section: str, experiment: dict):
    from bench_powerprop.data.datasets import resolve_data_config
    from bench_powerprop.models import resolve_model_config

    resolve = {"data": resolve_data_config, "model": resolve_model_config}.get(section)
    return resolve(experiment[section]) if resolve else experiment[section]


def check_data_paths(data: dict, where: str) -> None:
    """The local inputs the dataset declares (``PATH_OPTIONS``) exist and pass its own ``path_problems``."""
    from bench_powerprop.data.datasets import DATASETS

    if isinstance(data.get("base"), dict):  # a dataset built over another one (``permuted``)
        check_data_paths(data["base"], f"{where}.base")
    options = DATASETS.options(data["name"]).parse(data, where)
    for key in options.PATH_OPTIONS:
        value = getattr(options, key)
        if str(value or "").startswith("-"):
            raise ConfigError(option_like(f"{where}.{key}", value))
        if value is not None and not Path(value).exists():
            raise ConfigError(f"{where}.{key}: path {value!r} does not exist")
    for key, problem in options.path_problems().items():
        raise ConfigError(f"{where}.{key}: {problem}")
