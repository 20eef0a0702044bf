"""Config validation and grid expansion, before any job starts.

``validate_config(config)`` checks, in order: every number is finite; the JSON schema
(``workflow/schemas/config.schema.yaml``: the shape, closed ``train``/``prune``/grid blocks);
then what a schema cannot say — each experiment's kind, dataset, model and method options
against the typed options declared next to their registration (closed: an unknown key is an
error), variants, lineage references, and data paths. The first problem is raised as a
``ConfigError`` whose text is one line naming the field.

Used by ``workflow/rules/common.smk`` at parse time, so it must stay cheap to import: no torch.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench_powerprop.cells import DEFAULT_VARIANT, EXPERIMENT_PATTERN, Cell, coerce_axis, make_cell
from bench_powerprop.options import CellFacts, OptionError

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
FINAL = "final"
PREVIOUS = "previous"


class ConfigError(ValueError):
    """A config problem; ``str(error)`` is the one line shown to the user."""


# -- reading ---------------------------------------------------------------------------------
#: Limits of a config file: its bytes, its YAML aliases (``*name``), its nesting depth and its values (aliases
#: expanded). A shipped config has ~20 KB, a few aliases, depth < 10 and < 1,000 values; the limits stop an alias
#: bomb, a deeply nested or huge file while it is parsed (PyYAML's composer recurses once per level and handles
#: ~50,000 values a second), each in well under a second.
MAX_CONFIG_BYTES = 1 * 2**20
MAX_ALIASES = 100
MAX_VALUES = 10_000
MAX_DEPTH = 32
#: The key that turns on Snakemake's YTE templating (Python expressions in values) when Snakemake loads a file.
YTE_KEY = "__use_yte__"


class LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no Python objects) that also refuses duplicate keys and, while composing (before the
    document is built), more than ``MAX_ALIASES`` aliases, ``MAX_VALUES`` values or ``MAX_DEPTH`` levels."""

    def __init__(self, stream):
        super().__init__(stream)
        self.aliases = self.values = self.depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            self._limit(self.aliases > MAX_ALIASES, f"more than {MAX_ALIASES} aliases (*name); write the values out")
        self.values += 1
        self._limit(self.values > MAX_VALUES, f"more than {MAX_VALUES} values; a config has a few hundred")
        self.depth += 1
        self._limit(self.depth > MAX_DEPTH, f"nested more than {MAX_DEPTH} levels deep; a config has fewer than 10")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _limit(self, exceeded: bool, problem: str) -> None:
        if exceeded:
            raise yaml.composer.ComposerError(None, None, problem, self.peek_event().start_mark)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if key is None or key == "<<":
                    continue
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1}); a key may appear once",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


LimitedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, LimitedLoader.construct_mapping)


def count_values(value, limit: int) -> int:
    """Values in ``value`` counted with aliases expanded, stopping once past ``limit``."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def read_regular_file(path: Path, limit: int, what: str) -> bytes:
    """At most ``limit`` + 1 bytes of ``path``, refused unless it is a regular file (a FIFO or device never stalls it)."""
    from bench_powerprop.io import NotRegularFileError, open_regular

    try:
        with open_regular(path, "rb") as handle:
            return handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except NotRegularFileError:
        raise ConfigError(f"{what} {path} is not a regular file") from None
    except OSError as error:
        raise ConfigError(f"{what} {path}: cannot be read ({error.strerror})") from None


def load_yaml(path) -> dict:
    """A YAML config file; a missing, huge, deep or malformed file, a duplicate key, an alias bomb or a YTE template
    is a ConfigError naming file (and line)."""
    path = Path(path)
    data = read_regular_file(path, MAX_CONFIG_BYTES, "config file")
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 2**20} MB; a config is a few kilobytes")
    try:
        loaded = yaml.load(data, Loader=LimitedLoader)  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys to values, not a {type(loaded).__name__}")
    if YTE_KEY in loaded:
        raise ConfigError(f"{path}: {YTE_KEY}: YTE templates (Python expressions in values) are refused; write plain "
                          "values (see docs/security.md: snakemake --configfile evaluates them before any check)")
    if count_values(loaded, MAX_VALUES) > MAX_VALUES:
        raise ConfigError(f"{path}: more than {MAX_VALUES} values once its aliases are expanded; a config has a few hundred")
    return loaded


def merge_configs(base: dict, update: dict) -> dict:
    """Merge like Snakemake merges ``--configfile`` onto the Snakefile's configfile (in place)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_configs(base[key], value)
        else:
            base[key] = value
    return base


def load_configs(paths, overrides=()) -> dict:
    """The config files merged in order, then the ``--set`` overrides (not recorded in the config: the provenance
    page lists what was applied, passed beside the config, never a key a file could forge)."""
    config: dict = {}
    for path in paths:
        merge_configs(config, load_yaml(path))
    return apply_overrides(config, overrides)


# -- command-line overrides (``--set``, ``make run SET=...``) ----------------------------------
OVERRIDE_EXAMPLE = "experiments.sparse_digits.train.lr=0.05"


def parse_override(text: str) -> tuple[list[str], object]:
    """``key.path[1].leaf=value`` in OmegaConf's dotlist grammar (the one Hydra users type): the key's
    parts and the value typed as YAML reads it (``0.05`` a number, ``[0,1,2]`` a list, ``null`` None)."""
    from omegaconf import OmegaConf

    key, equals, _ = text.partition("=")
    if not equals or not key:
        raise ConfigError(f"--set {text}: expected key=value, e.g. {OVERRIDE_EXAMPLE}")
    try:
        path_tree = OmegaConf.to_container(OmegaConf.from_dotlist([f"{key}=null"]))
        value = OmegaConf.to_container(OmegaConf.from_dotlist([text]))
    except Exception as error:  # OmegaConf's grammar errors have no common base class
        raise ConfigError(f"--set {text}: {str(error).splitlines()[0]}") from None
    parts = []
    while isinstance(path_tree, dict) and len(path_tree) == 1:
        (part, path_tree), = path_tree.items()
        parts.append(part)
        value = value[part]
    if path_tree is not None or not all(parts):
        raise ConfigError(f"--set {text}: cannot read the key {key!r}, e.g. {OVERRIDE_EXAMPLE}")
    return parts, value


def apply_overrides(config: dict, overrides) -> dict:
    """Set each override's value (in place); every part of its key but the last must exist already
    (a list index in range), so a misspelt key is named here instead of creating a new section."""
    for text in overrides:
        parts, value = parse_override(text)
        parent, where = config, []
        for part in parts[:-1]:
            parent, index = _override_child(parent, part, where, text)
            where.append(index)
        last = _override_key(parent, parts[-1], where, text)
        existing = parent[last] if isinstance(parent, list) else parent.get(last)
        if isinstance(value, dict) and isinstance(existing, dict):
            merge_configs(existing, value)
        else:
            parent[last] = value
    return config


def split_overrides(line: str) -> list[str]:
    """``make run SET='a.b=1 "c.d=[0, 1]"'``: the overrides in one string, split as a shell splits words (quotes keep
    spaces) by ``shlex``, which evaluates nothing (no ``$(...)``, backticks or ``;``)."""
    import shlex

    try:
        return shlex.split(line)
    except ValueError as error:
        raise ConfigError(f"SET {line!r}: {error}; quote a value with spaces as \"a.b='[0, 1]'\"") from None


def _override_key(parent, part: str, where: list, text: str):
    """The key or list index ``part`` names in ``parent`` (a new key of a mapping is allowed: the schema judges it)."""
    here = field_path(where) or "the config"
    if isinstance(parent, dict):
        return part
    if isinstance(parent, list):
        if not (part.isascii() and part.isdigit()) or int(part) >= len(parent):
            raise ConfigError(f"--set {text}: {here} is a list of {len(parent)} item(s); [{part}] is not one of them")
        return int(part)
    raise ConfigError(f"--set {text}: {here} is a value ({parent!r}), not a mapping or list")


def _override_child(parent, part: str, where: list, text: str):
    index = _override_key(parent, part, where, text)
    if isinstance(parent, dict) and index not in parent:
        known = ", ".join(map(str, parent)) or "none"
        raise ConfigError(f"--set {text}: {field_path(where) or 'the config'} has no key {index!r} (it has: {known})")
    return parent[index], index


# -- the merged config make run hands Snakemake ---------------------------------------------------------
OVERRIDES_SUFFIX = ".overrides.json"


def write_config(path: Path, config: dict, overrides: list[str]) -> None:
    """``config`` as YAML at ``path`` and, beside it, the overrides applied to make it, tied to the file's bytes (the
    provenance page lists them; a config key could claim any list, a file beside a config it did not write cannot)."""
    import hashlib
    import json

    from bench_powerprop.io import write_text_atomic

    text = yaml.safe_dump(config, sort_keys=False)
    write_text_atomic(path, text)
    record = {"config_sha256": hashlib.sha256(text.encode()).hexdigest(), "overrides": list(overrides)}
    write_text_atomic(f"{path}{OVERRIDES_SUFFIX}", json.dumps(record, indent=1) + "\n")


def applied_overrides(configfiles) -> list[str]:
    """The overrides ``validate --write-config`` recorded beside each of ``configfiles`` that it wrote (and that
    still holds the bytes it wrote); none for a config file written by hand."""
    from bench_powerprop.io import file_sha256, read_json

    applied = []
    for path in configfiles:
        try:
            record = read_json(f"{path}{OVERRIDES_SUFFIX}")
            if record["config_sha256"] == file_sha256(path):
                applied += [str(text) for text in record["overrides"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return applied


def check_raw_configfiles(paths) -> None:
    """The config files Snakemake was given (``--configfile``), re-read with the harness's loader: its limits, its
    refusal of YTE and duplicate keys apply on the by-hand path too (Snakemake has already loaded them its own way)."""
    for path in paths:
        load_yaml(path)


# -- checks ----------------------------------------------------------------------------------
def field_path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


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
        problems = schema_errors(config, load_yaml(schema_path))
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
    from bench_powerprop.training.options import train_options

    where = f"experiments.{name}"
    pipeline = PIPELINES.get(experiment["kind"])
    if pipeline is None:
        raise ConfigError(f"{where}.kind: unknown pipeline shape {experiment['kind']!r} (known: {', '.join(sorted(PIPELINES))})")
    for section in pipeline.requires:
        if section not in experiment:
            raise ConfigError(f"{where}.{section}: required by kind {experiment['kind']!r}")
    if pipeline.requires_train_any and not set(pipeline.requires_train_any) & set(experiment["train"]):
        raise ConfigError(f"{where}.train: kind {experiment['kind']!r} needs one of {', '.join(pipeline.requires_train_any)}")
    train_options(experiment["train"], f"{where}.train")
    data = resolve_data_config(experiment["data"], f"{where}.data")
    check_batch_size(experiment, where)
    check_model_size(resolve_model_config(experiment["model"], f"{where}.model"), f"{where}.model")
    check_prune(experiment.get("prune"), f"{where}.prune")
    grid = ExperimentGrid(name, experiment)
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


def check_batch_size(experiment: dict, where: str) -> None:
    from bench_powerprop.data.datasets import DATASETS

    data = experiment["data"]
    examples = DATASETS.options(data["name"]).parse(data, f"{where}.data").training_examples()
    batch_size = experiment["train"]["batch_size"]
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


def check_structure(method_class, cell, structure, where: str) -> None:
    """A method runs only under the structures it declares; N:M cannot go below n/m of the weights."""
    if structure.kind not in method_class.structures:
        raise ConfigError(f"{where}: method {cell.method!r} supports structure {' or '.join(method_class.structures)} only, "
                          f"not {structure.label()}")
    if method_class.sparse and 1 - cell.sparsity < structure.lowest_density():
        raise ConfigError(f"{where}: {structure.label()} keeps at least {structure.lowest_density():g} of each layer, "
                          f"so sparsity {cell.sparsity:g} of {cell.path} cannot be reached")


def check_prune(prune: dict | None, where: str) -> None:
    if prune is None:
        return
    from bench_powerprop.scoring import SCORERS

    scorer = prune.get("scorer", "magnitude")
    if scorer not in SCORERS:
        raise ConfigError(f"{where}.scorer: unknown scorer {scorer!r} (registered: {', '.join(SCORERS.names())})")
    if SCORERS.get(scorer).needs_data:
        raise ConfigError(f"{where}.scorer: {scorer!r} needs data; one-shot pruning after training ranks by a data-free scorer")
    if prune.get("scope") == "global" and prune.get("last_layer_keep_factor", 2.0) != 1:
        raise ConfigError(f"{where}.last_layer_keep_factor: scope 'global' ranks the output layer with every other layer; "
                          f"set it to 1 (default 2), or use scope 'global_separate_output'")
    from bench_powerprop.structure import parse_structure

    structures = [parse_structure(value, f"{where}.structures[{i}]") for i, value in enumerate(prune.get("structures", []))]
    if any(not structure.unstructured for structure in structures) and prune.get("scope", "layerwise") != "layerwise":
        raise ConfigError(f"{where}.scope: structured sweeps prune layerwise only, got {prune['scope']!r}")
    if len({structure.label() for structure in structures}) != len(structures):
        raise ConfigError(f"{where}.structures: a structure is listed twice")
    levels = keep_levels(prune["keep_levels"])
    if len(set(levels)) != len(levels):
        raise ConfigError(f"{where}.keep_levels: the levels {levels} repeat a value")


def keep_levels(levels) -> list[float]:
    """Fractions of weights kept: an explicit list, or ``{"geomspace": [start, stop, num]}`` (numpy's geomspace)."""
    if isinstance(levels, dict):
        import numpy as np

        start, stop, num = levels["geomspace"]
        return [float(value) for value in np.geomspace(start, stop, int(num))]
    return [float(level) for level in levels]


DATA_PATH_FIELDS = ("root", "train_dir", "val_dir")


def check_data_paths(data: dict, where: str) -> None:
    if isinstance(data.get("base"), dict):  # a dataset built over another one (``permuted``)
        check_data_paths(data["base"], f"{where}.base")
    for key in DATA_PATH_FIELDS:
        if str(data.get(key, "")).startswith("-"):
            raise ConfigError(option_like(f"{where}.{key}", data[key]))
        if data.get(key) is not None and not Path(data[key]).exists():
            raise ConfigError(f"{where}.{key}: path {data[key]!r} does not exist")
    if data["name"] == "mnist":
        from bench_powerprop.data.idx import check_mnist_root

        problem = check_mnist_root(Path(data["root"]))
        if problem:
            raise ConfigError(f"{where}.root: {problem}")


# -- the grid ----------------------------------------------------------------------------------
@dataclass
class BlockCells:
    """The cells of one grid block and what the block declares for them."""

    index: int
    cells: list[Cell]
    snapshot_steps: tuple[int, ...] = ()
    init_from: dict | None = None
    mask_from: dict | None = None
    where: str = ""


@dataclass
class ExperimentGrid:
    """Every cell of one experiment, with its block's declarations; lineage resolved to parent cells."""

    name: str
    experiment: dict
    blocks: list[BlockCells] = field(default_factory=list)
    block_of: dict = field(default_factory=dict)
    #: tasks in the experiment's data, and each cell's parsed method options (filled in on first use)
    _tasks: int | None = None
    _options: dict = field(default_factory=dict)
    _options_dicts: dict = field(default_factory=dict)

    def __post_init__(self):
        for index, block in enumerate(self.experiment["grid"]):
            where = f"experiments.{self.name}.grid[{index}]"
            variants = block.get("variant", [DEFAULT_VARIANT])
            cells = [make_cell(self.name, method=method, variant=variant, alpha=alpha, sparsity=sparsity, seed=seed, level=level)
                     for method, variant, alpha, sparsity, seed, level in itertools.product(
                         block["method"], variants, block["alpha"], block["sparsity"], block["seed"], block.get("level", [None]))]
            declared = BlockCells(index, cells, tuple(block.get("snapshot_steps", ())), block.get("init_from"),
                                  block.get("mask_from"), where)
            self.blocks.append(declared)
            for cell in cells:
                if cell in self.block_of:
                    raise ConfigError(f"{where}: cell {cell.path} is already in grid[{self.block_of[cell].index}]")
                self.block_of[cell] = declared
        paths = {}
        for cell in self.block_of:
            if paths.setdefault(cell.path, cell) != cell:
                raise ConfigError(f"experiments.{self.name}.grid: two cells share the run directory {cell.path}")

    @property
    def cells(self) -> list[Cell]:
        return sorted(self.block_of, key=Cell.sort_key)

    def method_options_raw(self, method: str, variant: str) -> dict:
        base = dict(self.experiment.get("methods", {}).get(method, {}))
        if variant != DEFAULT_VARIANT:
            base.update(self.experiment.get("variants", {}).get(method, {}).get(variant, {}))
        return base

    def cell_facts(self, cell: Cell) -> CellFacts:
        """What option checks may know about a cell (the one construction: validation, lineage checks, plan)."""
        from bench_powerprop.data.datasets import resolve_data_config, task_count

        if self._tasks is None:
            self._tasks = task_count(resolve_data_config(self.experiment["data"]))
        return CellFacts(cell.sparsity, self.experiment["train"]["steps"], cell.alpha, self._tasks, self.structure)

    @property
    def structure(self):
        from bench_powerprop.structure import parse_structure

        return parse_structure(self.experiment.get("structure"), f"experiments.{self.name}.structure")

    def method_options(self, cell: Cell):
        """The cell's typed method options (the experiment's, its variant's over them, defaults filled in), parsed once."""
        from bench_powerprop.methods import METHODS

        key = self._options_key(cell)
        if key not in self._options:
            self._options[key] = METHODS.options(cell.method).parse(self.method_options_raw(cell.method, cell.variant),
                                                                    self.options_where(cell.method, cell.variant),
                                                                    self.cell_facts(cell))
        return self._options[key]

    def method_options_dict(self, cell: Cell) -> dict:
        """``method_options(cell).as_dict()``, made once per distinct options (a spec's ``method_options``)."""
        key = self._options_key(cell)
        if key not in self._options_dicts:
            self._options_dicts[key] = self.method_options(cell).as_dict()
        return self._options_dicts[key]

    @staticmethod
    def _options_key(cell: Cell) -> tuple:
        return cell.method, cell.variant, cell.sparsity, cell.alpha

    def options_where(self, method: str, variant: str) -> str:
        if variant == DEFAULT_VARIANT:
            return f"experiments.{self.name}.methods.{method}"
        return f"experiments.{self.name}.variants.{method}.{variant}"

    def check_options(self) -> None:
        from bench_powerprop.methods import METHODS

        for block in self.blocks:
            for cell in block.cells:
                if cell.method not in METHODS:
                    raise ConfigError(f"{block.where}.method: unknown method {cell.method!r} (registered: {', '.join(METHODS.names())})")
                variants = self.experiment.get("variants", {}).get(cell.method, {})
                if cell.variant != DEFAULT_VARIANT and cell.variant not in variants:
                    raise ConfigError(f"{block.where}.variant: method {cell.method!r} has no variant {cell.variant!r} "
                                      f"(defined under experiments.{self.name}.variants.{cell.method}: {sorted(variants) or 'none'})")
                check_structure(METHODS.get(cell.method), cell, self.structure, f"experiments.{self.name}.structure")
                if not METHODS.get(cell.method).sparse and cell.sparsity != 0:
                    raise ConfigError(f"{block.where}.sparsity: method {cell.method!r} trains without a sparsity target, "
                                      f"so its grid sparsity must be 0, got {cell.sparsity:g}")
                self.method_options(cell)
        for method in self.experiment.get("methods", {}):
            if method not in METHODS:
                raise ConfigError(f"experiments.{self.name}.methods.{method}: unknown method (registered: {', '.join(METHODS.names())})")
        for method, variants in self.experiment.get("variants", {}).items():
            if method not in METHODS:
                raise ConfigError(f"experiments.{self.name}.variants.{method}: unknown method (registered: {', '.join(METHODS.names())})")
            for variant in variants:  # a variant no cell uses yet: each option checked on its own
                if variant != DEFAULT_VARIANT and (method, variant) not in {key[:2] for key in self._options}:
                    METHODS.options(method).parse_fields(self.method_options_raw(method, variant), self.options_where(method, variant))

    def parent(self, cell: Cell, relation: str) -> tuple[Cell, int | str] | None:
        """The cell and step ``cell`` inherits from through ``relation`` (init_from / mask_from), or None.

        ``level: previous`` names the cell's own level minus one (the previous level of a pruning chain).
        """
        declared = getattr(self.block_of[cell], relation)
        if declared is None:
            return None
        changes = {key: self._parent_axis(cell, key, value, relation) for key, value in declared["cell"].items()}
        return cell.replace(**changes), declared["step"]

    def _parent_axis(self, cell: Cell, key: str, value, relation: str):
        if key == "level" and value == PREVIOUS:
            if cell.level is None or cell.level < 1:
                raise ConfigError(f"{self.block_of[cell].where}.{relation}.cell.level: 'previous' needs cells with a level >= 1, "
                                  f"got {cell.path}")
            return cell.level - 1
        return coerce_axis(key, value)

    def check_lineage(self) -> None:
        from bench_powerprop.methods import METHODS

        for cell, block in self.block_of.items():
            for relation in ("init_from", "mask_from"):
                found = self.parent(cell, relation)
                if found is None:
                    continue
                parent, step = found
                where = f"{block.where}.{relation}"
                if parent not in self.block_of:
                    raise ConfigError(f"{where}: cell {cell.path} would inherit from {parent.path}, which is not in the grid")
                if parent == cell:
                    raise ConfigError(f"{where}: a cell cannot inherit from itself")
                if step != FINAL and step not in self.block_of[parent].snapshot_steps:
                    raise ConfigError(f"{where}.step: {step} is not in the snapshot_steps of {parent.path} "
                                      f"({list(self.block_of[parent].snapshot_steps)}); add it there or use final")
                if relation == "mask_from" and not METHODS.get(cell.method).accepts_mask_from:
                    raise ConfigError(f"{where}: method {cell.method!r} does not use an inherited mask")
            self._check_method_lineage(cell, block)
        for cell in self.block_of:
            self._check_acyclic(cell)

    def _check_method_lineage(self, cell: Cell, block: BlockCells) -> None:
        """The method's own rules about what it inherits (``Method.check_lineage``), as one-line config errors."""
        from bench_powerprop.methods import METHODS

        options = self.method_options(cell)
        declared = {relation: found[1] for relation in ("init_from", "mask_from") if (found := self.parent(cell, relation))}
        try:
            METHODS.get(cell.method).check_lineage(options, declared, cell)
        except OptionError as error:
            raise ConfigError(f"{block.where}: {error}") from None

    def _check_acyclic(self, cell: Cell, descendants: tuple = ()) -> None:
        if cell in descendants:
            raise ConfigError(f"{self.block_of[descendants[0]].where}: the lineage of {descendants[0].path} loops back to {cell.path}")
        for found in (self.parent(cell, "init_from"), self.parent(cell, "mask_from")):
            if found and found[0] in self.block_of:
                self._check_acyclic(found[0], (*descendants, cell))


def grid_cells(config: dict) -> list[Cell]:
    """Every training cell of the active experiments, sorted."""
    cells = []
    for name in config["active_experiments"]:
        cells += ExperimentGrid(name, config["experiments"][name]).cells
    return cells


def export_job_environment(repo_dir: str) -> None:
    """Jobs run ``python -m bench_powerprop``: make ``python`` the interpreter running Snakemake
    (also when its venv is not activated) and the package importable without installing it.
    Under ``--sdm conda`` the rule's env is activated afterwards, so its python wins."""
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_dir), os.environ.get("PYTHONPATH")]))
