"""A workflow config: read with limits, overridden, validated, and expanded into grids of cells.

One module per concern: ``loading`` (the YAML loader and its limits, the merge of files), ``overrides``
(the files merged in order and ``--set`` on them, the merged config ``make run`` writes), ``validation`` (the schema, generated in part by
``schema`` from the typed options, and the checks a schema cannot express), ``prune`` (the typed one-shot
pruning section) and ``grid`` (an experiment's cells and lineage). The names other modules use are
re-exported here. Torch-free: Snakemake's parse imports it.
"""

from bench_powerprop.config.grid import FINAL, PREVIOUS, BlockCells, ExperimentGrid, check_structure, grid_cells
from bench_powerprop.config.loading import (
    MAX_ALIASES,
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_VALUES,
    REPO_ROOT,
    ConfigError,
    LimitedLoader,
    check_raw_configfiles,
    field_path,
    load_yaml,
    merge_configs,
    read_regular_file,
)
from bench_powerprop.config.overrides import (
    applied_overrides,
    apply_overrides,
    load_configs,
    parse_override,
    split_overrides,
    write_config,
)
from bench_powerprop.config.validation import SCHEMA_PATH, outputs_dir, validate_config, validate_or_exit

__all__ = [
    "FINAL", "MAX_ALIASES", "MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_VALUES", "PREVIOUS", "REPO_ROOT", "SCHEMA_PATH",
    "BlockCells", "ConfigError", "ExperimentGrid", "LimitedLoader", "applied_overrides", "apply_overrides",
    "check_raw_configfiles", "check_structure", "field_path", "grid_cells", "load_configs", "load_yaml",
    "merge_configs", "outputs_dir", "parse_override", "read_regular_file", "split_overrides", "validate_config",
    "validate_or_exit", "write_config",
]
