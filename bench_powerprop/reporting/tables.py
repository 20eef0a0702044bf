"""Tables built from summaries: the one-shot table and the paper-shaped sparse-training tables.

Headers say what was measured from the experiment's spec (dataset, model, budget, pruning),
never from free text; cells use ``labels.accuracy_text``.
"""

from __future__ import annotations

import json

import pandas as pd

from bench_powerprop.config.prune import prune_options
from bench_powerprop.reporting import published as pub
from bench_powerprop.reporting.labels import (
    STATUS_LEGEND,
    accuracy_text,
    alpha_label,
    budget_text,
    method_label,
    sparsity_label,
    weights_remaining_label,
)
from bench_powerprop.reporting.summaries import stat_columns
from bench_powerprop.training.options import train_options

NO_RUN = "—"
FLOPS_NOTE = ("Training FLOPs relative to dense training of the same model: forward and backward under the masks, "
              "plus RigL's dense-gradient steps (RigL paper, Appendix H), mean over seeds.")


def setting_text(manifest: dict) -> str:
    return (f"Dataset {manifest['data']}, model {pub.model_key(manifest['model'])}, training "
            f"{budget_text(manifest['train'])}.")


# -- one-shot ----------------------------------------------------------------------------------
def line_key_label(summary: pd.DataFrame):
    """How a trained configuration is named in a table column or a figure legend.

    α alone when the experiment trains one (method, variant, sparsity); otherwise all of them,
    so configurations that differ are never pooled under one label.
    """
    several = len(summary[["method", "variant", "sparsity"]].drop_duplicates()) > 1

    def label(method, variant, sparsity, alpha) -> str:
        if not several:
            return alpha_label(alpha)
        trained_at = "" if sparsity == 0 else f" at {sparsity_label(sparsity)}"
        return f"{method_label(method, variant)}{trained_at}, {alpha_label(alpha)}"

    return label


def oneshot_markdown(summary: pd.DataFrame, manifest: dict, heading: str) -> str:
    """Test accuracy (%) by weights remaining (rows) and trained configuration (columns)."""
    label = line_key_label(summary)
    table = summary.assign(
        text=[accuracy_text(*stat_columns(row)) for _, row in summary.iterrows()],
        column=[label(m, v, s, a) for m, v, s, a in summary[["method", "variant", "sparsity", "alpha"]].itertuples(index=False)],
        weights_kept=summary["target_sparsity"].map(weights_remaining_label),
    )
    order = list(dict.fromkeys(table.sort_values(["method", "variant", "sparsity", "alpha"])["column"]))
    pivot = table.pivot_table(index=["target_sparsity", "weights_kept"], columns="column", values="text", aggfunc="first")
    pivot = pivot.sort_index(ascending=False).droplevel("target_sparsity")[order]
    prune = prune_options(manifest["prune"], "manifest.prune")
    header = (
        f"# {manifest['experiment']}: {heading}\n\n"
        f"{setting_text(manifest)} Pruning: {prune.scope} {prune.scorer} "
        f"ranking of the effective weights θ, no retraining; the output layer keeps "
        f"min(1, {prune.last_layer_keep_factor:g}×) the kept fraction.\n\n"
        f"Test accuracy in % (mean ± std over seeds). {STATUS_LEGEND}\n\n"
    )
    return header + pivot.rename_axis("weights kept").to_markdown() + "\n"


def structured_markdown(rows: pd.DataFrame) -> str:
    """Test accuracy (%, mean ± std over seeds) of the structured sweeps: one row per structure and weights kept."""
    if rows.empty:
        return ""
    grouped = rows.groupby(["structure", "target_sparsity", "alpha"])["test_accuracy"]
    table = grouped.agg(["mean", "std"]).reset_index()
    table["text"] = [f"{100 * m:.1f} ± {100 * s:.1f}" if s == s else f"{100 * m:.1f}" for m, s in zip(table["mean"], table["std"])]
    table["weights kept"] = table["target_sparsity"].map(weights_remaining_label)
    pivot = table.pivot_table(index=["structure", "target_sparsity", "weights kept"], columns="alpha", values="text", aggfunc="first")
    pivot = pivot.sort_index(ascending=[True, False, True]).droplevel("target_sparsity")
    pivot.columns = [f"α = {alpha:g}" for alpha in pivot.columns]
    pivot = pivot.reset_index().set_index("structure")
    return ("\n## Structured one-shot pruning (same trained cells)\n\nWhole groups pruned by their mean |θ| "
            "(docs/structure.md): N:M at n/m, channel and block at every level, the output layer kept dense under "
            "channel and block. Test accuracy in % (mean ± std over seeds).\n\n" + pivot.to_markdown() + "\n")


# -- sparse training ---------------------------------------------------------------------------
def row_label(method: str, variant: str, alpha: float) -> str:
    return f"{method_label(method, variant)}, {alpha_label(alpha)}"


def ordered_rows(summary: pd.DataFrame) -> list[tuple[str, str, float]]:
    """(method, variant, α): dense first, then methods in grid order, variants and α ascending."""
    keys = summary[["method", "variant", "alpha"]].drop_duplicates()
    methods = sorted(dict.fromkeys(keys["method"]), key=lambda name: name != "dense")
    return [tuple(key) for method in methods
            for key in keys[keys["method"] == method].sort_values(["variant", "alpha"]).itertuples(index=False)]


def published_text(rows: pd.DataFrame, our_alpha: float) -> str:
    values = rows.dropna(subset=["value"])
    if values.empty:
        return pub.NOT_TRANSCRIBED
    return "; ".join(f"{row.value:.2f} ({row.paper}" + (f", α={row.alpha:g})" if row.alpha != our_alpha else ")")
                     for row in values.itertuples())


def difference_text(our_mean: float, rows: pd.DataFrame) -> str:
    values = rows.dropna(subset=["value"])
    if values.empty or pd.isna(our_mean):
        return NO_RUN
    return "; ".join(f"{100 * our_mean - row.value:+.2f} pp" for row in values.itertuples())


def paper_table(summary: pd.DataFrame, published: pd.DataFrame, dataset: str, model: str) -> pd.DataFrame:
    """Long form: one row per (method, variant, α, sparsity) with ours, FLOPs, published, difference."""
    records = []
    for method, variant, alpha in ordered_rows(summary):
        for sparsity in sorted(summary["sparsity"].unique()):
            cell = summary[(summary["method"] == method) & (summary["variant"] == variant) & (summary["alpha"] == alpha)
                           & (summary["sparsity"] == sparsity)]
            if cell.empty:
                continue
            stats = cell.iloc[0]
            matches = pub.matching(published, dataset, model, method, variant, alpha, sparsity)
            records.append({
                "row": row_label(method, variant, alpha), "method": method, "variant": variant, "alpha": alpha,
                "sparsity": sparsity, "ours": accuracy_text(*stat_columns(stats)), "n_seeds": int(stats["n_seeds"]),
                "training_flops_fraction": stats["mean_training_flops_fraction"],
                "published": published_text(matches, alpha), "ours_minus_published": difference_text(stats["mean"], matches),
            })
    return pd.DataFrame(records)


def wide(table: pd.DataFrame, column: str, fmt=str) -> pd.DataFrame:
    """Rows ``row`` (in table order) × columns sparsity."""
    rows = list(dict.fromkeys(table["row"]))
    pivot = table.assign(value=table[column].map(fmt), label=table["sparsity"].map(sparsity_label)).pivot(
        index="row", columns="label", values="value")
    columns = [sparsity_label(s) for s in sorted(table["sparsity"].unique())]
    return pivot.reindex(index=rows, columns=columns).fillna(NO_RUN).rename_axis("method", axis=0).rename_axis(None, axis=1)


def reference_table(published: pd.DataFrame, methods: list[str], dataset: str, model: str) -> pd.DataFrame:
    """Published numbers for our methods on *other* datasets/models: context only, not comparable."""
    other = pub.other_settings(published, methods, dataset, model)
    if other.empty:
        return pd.DataFrame()
    other = other.assign(
        setting=other["dataset"] + " / " + other["model"],
        row=[f"{method_label(m, v)}, " + (alpha_label(a) if not pd.isna(a) else "Powerprop (α not transcribed)")
             for m, v, a in zip(other["method"], other["variant"], other["alpha"])],
        column=other["sparsity"].map(sparsity_label),
        text=[pub.NOT_TRANSCRIBED if pd.isna(value) else f"{value:.2f}" for value in other["value"]],
    )
    pivot = other.pivot_table(index=["setting", "paper", "row"], columns="column", values="text",
                              aggfunc=" / ".join, fill_value=NO_RUN)
    order = sorted(pivot.columns, key=lambda label: float(label.split("%")[0]))
    return pivot[order].reset_index().rename(columns={"setting": "dataset / model", "row": "method"})


def options_text(manifest: dict) -> str:
    configured = {**{m: o for m, o in manifest["methods"].items() if o}}
    parts = [f"{method}: {json.dumps(options, sort_keys=True)}" for method, options in sorted(configured.items())]
    parts += [f"{method} [{variant}]: {json.dumps(options, sort_keys=True)}"
              for method, variants in sorted(manifest["variants"].items()) for variant, options in sorted(variants.items())]
    return ("Method options set in the config: " + "; ".join(parts) + ". " if parts else "") + (
        "Everything else is each method's default (`python -m bench_powerprop list methods`).")


def sparse_markdown(table: pd.DataFrame, reference: pd.DataFrame, manifest: dict,
                    heading: str, notes: str = "") -> str:
    dataset, model = manifest["data"], pub.model_key(manifest["model"])
    parts = [
        f"# {manifest['experiment']}: {heading}\n",
        f"{setting_text(manifest)} Every method gets the same step budget. {options_text(manifest)}\n",
        f"## Test accuracy (%) by target sparsity\n\nMean ± std over seeds. {STATUS_LEGEND}\n",
        wide(table, "ours").to_markdown() + "\n",
        *([notes + "\n"] if notes else []),
    ]
    compared = table[table["published"] != pub.NOT_TRANSCRIBED]
    if compared.empty:
        parts.append(f"No published number exists for {dataset} / {model}, so nothing is compared with ours here.\n")
    else:
        parts += [f"## Published numbers for the same dataset and model ({dataset} / {model})\n",
                  wide(compared, "published").to_markdown() + "\n",
                  "Ours − published, in percentage points:\n", wide(compared, "ours_minus_published").to_markdown() + "\n"]
    parts += [f"## Training FLOPs (× dense)\n\n{FLOPS_NOTE}\n",
              wide(table, "training_flops_fraction", lambda value: f"{value:.3f}").to_markdown() + "\n"]
    if not reference.empty:
        parts += [
            "## Published reference numbers for other datasets/models — NOT comparable\n",
            f"Top-1 accuracies (%) from the cited papers in the settings named in the first column. Our numbers above "
            f"are for {dataset} / {model}: no difference is computed. Exact sources (table or file, commit) are in "
            "`configs/published_results.csv`.\n",
            reference.to_markdown(index=False) + "\n",
        ]
    return "\n".join(parts)


# -- pruning at initialisation -------------------------------------------------------------------
def nearest_published(published: pd.DataFrame, methods: list[str], dataset: str, model: str, sparsities) -> pd.DataFrame:
    """Published rows of ``methods`` in *other* settings, each curve only at the published sparsity nearest
    to each of ours (context for the reader; never compared)."""
    other = pub.other_settings(published, methods, dataset, model).dropna(subset=["sparsity"])
    chosen = set()
    for _, curve in other.groupby(["paper", "dataset", "model", "method", "variant", "alpha"], dropna=False):
        chosen |= {(curve["sparsity"] - sparsity).abs().idxmin() for sparsity in sparsities}
    return other.loc[sorted(chosen)]


# -- lottery tickets -----------------------------------------------------------------------------
def level_text(level) -> str:
    return "—" if pd.isna(level) else f"{int(level)}"


def lottery_markdown(summary: pd.DataFrame, manifest: dict, label, heading: str) -> str:
    """Test accuracy (%) by level (rows, with the weights remaining) and ticket / control / α (columns)."""
    remaining = summary.groupby("level", dropna=False)["mean_actual_sparsity"].mean()
    table = summary.assign(
        text=[accuracy_text(*stat_columns(row)) for _, row in summary.iterrows()],
        column=[f"{label(m, v)}, {alpha_label(a)}" for m, v, a in summary[["method", "variant", "alpha"]].itertuples(index=False)],
        row=[f"level {level_text(level)}: {weights_remaining_label(remaining[level])}" for level in summary["level"]],
    )
    order = list(dict.fromkeys(table.sort_values(["alpha", "method", "variant"])["column"]))
    rows = list(dict.fromkeys(table.sort_values("level", na_position="first")["row"]))
    pivot = table.pivot_table(index="row", columns="column", values="text", aggfunc="first").reindex(index=rows, columns=order)
    header = (
        f"# {manifest['experiment']}: {heading}\n\n"
        f"{setting_text(manifest)} Level 0 trains the dense network; every later level prunes the previous level's "
        "trained weights by magnitude, rewinds the survivors and trains again. The controls at each level use the "
        "ticket's per-layer counts: the same mask on fresh weights (random reinit), or a random mask (scratch). "
        f"{options_text(manifest)}\n\n"
        f"Test accuracy in % (mean ± std over seeds); rows: level and weights remaining. {STATUS_LEGEND}\n\n"
    )
    return header + pivot.fillna(NO_RUN).rename_axis("level: weights remaining").to_markdown() + "\n"


# -- gradient flow -------------------------------------------------------------------------------
def mean_std_text(values: pd.Series, fmt: str = "{:.3g}") -> str:
    values = values.dropna()
    if values.empty:
        return NO_RUN
    return fmt.format(values.mean()) + ("" if len(values) < 2 else " ± " + fmt.format(values.std()))


def gradflow_table(summary: pd.DataFrame, norms: pd.DataFrame, label) -> pd.DataFrame:
    """Per trained configuration: final test accuracy and the gradient norm at the first, middle and last probe."""
    steps = sorted(norms["step"].unique())
    probes = [steps[0], steps[len(steps) // 2], steps[-1]] if steps else []
    records = []
    for _, row in summary.iterrows():
        same = (norms["method"] == row["method"]) & (norms["variant"] == row["variant"]) & (norms["alpha"] == row["alpha"]) & (
            norms["sparsity"] == row["sparsity"]) & (norms["status"] != "diverged")
        record = {"method": label(row["method"], row["variant"]), "α": alpha_label(row["alpha"]),
                  "sparsity": sparsity_label(row["sparsity"]), "test accuracy (%)": accuracy_text(*stat_columns(row))}
        for step in dict.fromkeys(probes):
            record[f"‖∇‖ at step {step}"] = mean_std_text(norms.loc[same & (norms["step"] == step), "grad_norm"])
        records.append(record)
    return pd.DataFrame(records)


def gradflow_markdown(table: pd.DataFrame, manifest: dict, heading: str) -> str:
    train = train_options(manifest["train"])
    every = f"every {train.gradient_norm_every} steps" if train.gradient_norm_every else ""
    extra = f"at steps {list(train.gradient_norm_steps)}" if train.gradient_norm_steps else ""
    header = (
        f"# {manifest['experiment']}: {heading}\n\n"
        f"{setting_text(manifest)} The probe logs the L2 norm of the masked gradient of the unregularised loss on one fixed "
        f"batch of validation images ({' and '.join(part for part in (every, extra) if part)}), with respect to the "
        "trained parameters (φ under Powerprop, and biases) — Evci et al. 2022's measurement; `tables/gradflow_norms.csv` "
        f"holds every probe, with the θ-gradient norm too. {options_text(manifest)}\n\n"
        f"Mean ± std over seeds; a diverged seed is left out. {STATUS_LEGEND}\n\n"
    )
    return header + table.to_markdown(index=False) + "\n"
