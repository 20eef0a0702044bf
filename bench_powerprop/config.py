"""Config validation (JSON schema + checks a schema cannot express) and grid expansion.

Used by ``workflow/rules/common.smk`` at parse time, so it must stay cheap to import:
no torch here. Errors are reported as one line naming the offending field.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
METHODS_DIR = Path(__file__).resolve().parent / "methods"


class ConfigError(ValueError):
    """A config problem; ``str(error)`` is the one line shown to the user."""


@dataclass(frozen=True, order=True)
class Cell:
    experiment: str
    method: str
    alpha: float
    sparsity: float
    seed: int

    @property
    def wildcards(self) -> dict[str, str]:
        return {"experiment": self.experiment, "method": self.method, "alpha": format_number(self.alpha),
                "sparsity": format_number(self.sparsity), "seed": str(self.seed)}


def format_number(value: float) -> str:
    """Canonical text of a grid value in paths: 2.0 → '2', 0.90 → '0.9'."""
    return f"{float(value):g}"


def load_yaml(path) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def field_path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def schema_errors(config: dict, schema: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda error: (list(error.absolute_path), error.message))
    return [f"{field_path(error.absolute_path)}: {_leaf_error(error).message}" for error in errors]


def _leaf_error(error):
    import jsonschema

    return jsonschema.exceptions.best_match(error.context) if error.context else error


# A class decorated with @register_method, its body (indented lines), and the ``name = "..."`` in it.
REGISTERED_CLASS = re.compile(r"^@register_method[ \t]*\nclass \w+[^\n]*:\n(?P<body>(?:[ \t]+[^\n]*\n|[ \t]*\n)*)", re.M)
NAME_ATTRIBUTE = re.compile(r"^[ \t]+name\s*(?::[^=\n]*)?=\s*[\"'](\w+)[\"']", re.M)


def registered_method_names() -> set[str]:
    """Names declared by ``@register_method`` classes, read from source without importing torch.

    A regular expression rather than ``ast``: CPython 3.11's ``ast.parse`` can raise
    "AST constructor recursion depth mismatch" inside a process where numba has run.
    """
    names = set()
    for path in METHODS_DIR.glob("*.py"):
        for match in REGISTERED_CLASS.finditer(path.read_text(encoding="utf-8")):
            name = NAME_ATTRIBUTE.search(match.group("body"))
            if name:
                names.add(name.group(1))
    return names


DATA_PATH_FIELDS = {"mnist": ["root"], "cifar10": ["root"], "imagenet": ["train_dir", "val_dir"]}


def semantic_errors(config: dict) -> list[str]:
    errors = []
    experiments = config["experiments"]
    for name in config["active_experiments"]:
        if name not in experiments:
            errors.append(f"active_experiments: {name!r} is not defined under experiments (defined: {sorted(experiments)})")
    known_methods = registered_method_names()
    for name, experiment in experiments.items():
        for i, block in enumerate(experiment["grid"]):
            for method in block["method"]:
                if method not in known_methods:
                    errors.append(f"experiments.{name}.grid[{i}].method: unknown method {method!r} (registered: {sorted(known_methods)})")
        if name in config["active_experiments"]:
            errors.extend(_missing_data_paths(name, experiment["data"]))
    return errors


def _missing_data_paths(experiment: str, data: dict) -> list[str]:
    errors = []
    for field in DATA_PATH_FIELDS.get(data["name"], []):
        if not Path(data[field]).exists():
            errors.append(f"experiments.{experiment}.data.{field}: path {data[field]!r} does not exist")
    return errors


def validate_config(config: dict, schema_path=SCHEMA_PATH) -> None:
    """Raise ConfigError with the first problem (schema first, then semantic checks)."""
    problems = schema_errors(config, load_yaml(schema_path))
    if not problems:
        problems = semantic_errors(config)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(f"invalid config: {problems[0]}{more}")


def validate_or_exit(config: dict, schema_path=SCHEMA_PATH) -> None:
    """For Snakefiles: print the one-line error and exit non-zero before any job starts."""
    try:
        validate_config(config, schema_path)
    except ConfigError as error:
        print(f"bench_powerprop: {error}", file=sys.stderr)
        sys.exit(1)


def export_job_environment(repo_dir: str) -> None:
    """Jobs run ``python -m bench_powerprop``: make ``python`` the interpreter running Snakemake
    (also when its venv is not activated) and the package importable without installing it.
    Under ``--sdm conda`` the rule's env is activated afterwards, so its python wins."""
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_dir), os.environ.get("PYTHONPATH")]))


def grid_cells(config: dict) -> list[Cell]:
    """Every training cell of the active experiments, without duplicates, sorted."""
    cells = set()
    for name in config["active_experiments"]:
        for block in config["experiments"][name]["grid"]:
            for method, alpha, sparsity, seed in itertools.product(block["method"], block["alpha"], block["sparsity"], block["seed"]):
                cells.add(Cell(name, method, float(alpha), float(sparsity), int(seed)))
    return sorted(cells)


def cell_spec(config: dict, cell: Cell) -> dict:
    """The full, hashable description of one training cell."""
    experiment = config["experiments"][cell.experiment]
    return {
        "experiment": cell.experiment,
        "method": cell.method,
        "alpha": cell.alpha,
        "sparsity": cell.sparsity,
        "seed": cell.seed,
        "data": experiment["data"],
        "model": experiment["model"],
        "train": experiment["train"],
        "method_options": experiment.get("methods", {}).get(cell.method, {}),
    }
