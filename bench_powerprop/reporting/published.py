"""Published numbers (``configs/published_results.csv``) and how they are matched to our cells.

One row per cited value, with its exact source. A number that could not be read at its source
is an empty ``value`` whose source says NOT TRANSCRIBED — never guessed. ``variant`` is empty for
a method's default configuration and otherwise names the variant (``rigl`` + ``uniform``).
A published number is put beside ours only for the same dataset, model, method, variant,
sparsity and side of α = 1; numbers for other datasets/models are listed apart as context.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench_powerprop.cells import DEFAULT_VARIANT

PUBLISHED_COLUMNS = ["paper", "dataset", "model", "method", "variant", "alpha", "sparsity", "metric", "value", "source"]
PUBLISHED_KEY = ["paper", "dataset", "model", "method", "variant", "alpha", "sparsity", "metric"]
NOT_TRANSCRIBED = "not transcribed"


def load_published(path: str | Path | None) -> pd.DataFrame:
    """The published-results CSV (value numeric, NaN when not transcribed); empty without a path."""
    if not path:
        return pd.DataFrame(columns=PUBLISHED_COLUMNS)
    published = pd.read_csv(path, dtype={"source": str, "paper": str, "variant": str}, keep_default_na=True)
    missing = set(PUBLISHED_COLUMNS) - set(published.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    published["variant"] = published["variant"].fillna("").replace("", DEFAULT_VARIANT)
    for column in ("alpha", "sparsity", "value"):
        published[column] = pd.to_numeric(published[column], errors="raise")
    return published


CURVE_COLUMNS = ["model", "method", "sparsity", "run", "top1_accuracy_percent"]


def load_curves(path: str | Path | None) -> pd.DataFrame:
    """Published per-run accuracy curves (``configs/published_curves/*.csv``, each row with its source); empty without a path."""
    if not path:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.read_csv(path, usecols=CURVE_COLUMNS)


def model_key(model_cfg: dict) -> str:
    """How published_results.csv names a model: ``mlp_300_100`` or the timm arch (``resnet50``)."""
    if model_cfg["name"] == "mlp":
        return "_".join(["mlp", *map(str, model_cfg["hidden"])])
    return model_cfg.get("arch") or model_cfg["name"]


def is_powerprop(alpha: float) -> bool:
    """α = 1 is the plain method; any other α (or an α not transcribed) is a Powerprop variant."""
    return alpha != 1  # NaN != 1


def matching(published: pd.DataFrame, dataset: str, model: str, method: str, variant: str, alpha: float,
             sparsity: float) -> pd.DataFrame:
    """Published rows for the same dataset, model, method, variant, sparsity and side of α = 1."""
    same = (
        (published["dataset"] == dataset)
        & (published["model"] == model)
        & (published["method"] == method)
        & (published["variant"] == variant)
        & published["sparsity"].sub(sparsity).abs().lt(1e-9)
        & (published["alpha"].map(is_powerprop) == is_powerprop(alpha))
    )
    return published[same]


def other_settings(published: pd.DataFrame, methods: list[str], dataset: str, model: str) -> pd.DataFrame:
    """Published rows for our methods on *other* datasets/models (context only, never subtracted)."""
    related = published["method"].isin(methods)
    return published[related & ~((published["dataset"] == dataset) & (published["model"] == model))]
