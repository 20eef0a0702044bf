"""Reading config files with limits: the YAML loader, the merge of several files, one-line errors.

Torch-free and cheap to import (Snakemake's parse imports it).
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


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

