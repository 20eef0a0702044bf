"""The config's JSON schema: the shape from ``workflow/schemas/config.schema.yaml``, the sections of typed options
generated from their declarations (``Options.json_schema``: each option's check, documentation and default), so a
setting is declared once. Torch-free."""

from __future__ import annotations

from bench_powerprop.config.loading import REPO_ROOT, load_yaml

SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


def generated_sections() -> dict:
    """``{$defs name: schema}`` of the config sections declared as typed options."""
    from bench_powerprop.config.grid import GridBlock
    from bench_powerprop.config.prune import PruneOptions
    from bench_powerprop.training.options import TrainOptions

    return {"train": TrainOptions.json_schema(), "prune": PruneOptions.json_schema(), "grid_block": GridBlock.json_schema()}


def config_schema(path=SCHEMA_PATH) -> dict:
    """The whole schema: the file's shape with the generated sections in its ``$defs``."""
    schema = load_yaml(path)
    schema.setdefault("$defs", {}).update(generated_sections())
    return schema
