"""Command-line overrides (``--set key.path=value``, ``make run SET=...``) and the merged config ``make run`` writes
with the overrides recorded beside it."""

from __future__ import annotations

from pathlib import Path

import yaml

from bench_powerprop.config.loading import ConfigError, field_path, load_yaml, merge_configs

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


def load_configs(paths, overrides=()) -> dict:
    """The config files merged in order, then the ``--set`` overrides (not recorded in the config: the provenance
    page lists what was applied, passed beside the config, never a key a file could forge)."""
    config: dict = {}
    for path in paths:
        merge_configs(config, load_yaml(path))
    return apply_overrides(config, overrides)


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

