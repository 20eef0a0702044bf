"""Everything the workflow derives from a validated config, indexed so each job's lookups are O(1).

``Plan(config)`` expands every active experiment's grid once. The rules ask it for a cell by its
wildcards (``{experiment}``, ``{cell}`` = the cell's run-directory path), a cell's training
spec, its lineage inputs, an experiment's manifest, and the final targets. Torch-free.

A training spec is the full description of one cell: its axes, the data, model and method
options with every default filled in, the training settings, the workflow's ``.beton`` paths, its
snapshot steps and its lineage (the parent files and the parents' spec hashes, so a changed parent
retrains its children). Its spec hash (``bench_powerprop.identity``: paths, logging switches and
options at their neutral value left out) names the cell's run folder, ``{cell.path}/h~<spec hash>``:
another config's cell is another folder, never the same one overwritten (docs/identity.md).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from bench_powerprop.cell_spec import CellSpec
from bench_powerprop.cells import Cell
from bench_powerprop.config import FINAL, ExperimentGrid, outputs_dir
from bench_powerprop.identity import cell_hash, folder_hash, hash_segment
from bench_powerprop.io import write_json_atomic, write_text_atomic
from bench_powerprop.pipelines import PIPELINES

#: The files the ``train`` rule declares as outputs (workflow/rules/train.smk): metrics.json, written last,
#: stands for the cell's other files (``bench_powerprop.integrity`` checks them against its fingerprints).
TRAIN_RULE_OUTPUTS = ("metrics.json",)


class Plan:
    def __init__(self, config: dict):
        self.config = config
        self.results = config.get("results_dir", "results")
        #: the tables, figures, claims and report of this run (``{results}/{run_name}`` with a run name); cells: ``results``
        self.outputs = outputs_dir(config)
        self.checkpoints = config.get("checkpoint_dir", "checkpoints")
        self.grids = {name: ExperimentGrid(name, config["experiments"][name]) for name in config["active_experiments"]}
        self._by_axes = {(cell.experiment, cell.path): cell for grid in self.grids.values() for cell in grid.block_of}
        self._cell_specs: dict[Cell, CellSpec] = {}
        self._specs: dict[Cell, dict] = {}
        self._hashes: dict[Cell, str] = {}
        self._shared_identity: dict[int, dict] = {}
        self._parents: dict[Cell, dict] = {}
        self._experiment_sections: dict[str, dict] = {}

    # -- cells ---------------------------------------------------------------------------
    @cached_property
    def cells(self) -> list[Cell]:
        return [cell for grid in self.grids.values() for cell in grid.cells]

    def cell(self, experiment: str, path: str) -> Cell:
        """The cell whose folder below ``runs/`` is ``path`` (``cell_path``: its axes, then ``h~<its spec hash>``)."""
        axes, _, segment = path.rpartition("/")
        cell = self._by_axes.get((experiment, axes))
        if cell is None or folder_hash(segment) != self.spec_hash(cell):
            raise ValueError(f"no grid cell {path!r} in experiment {experiment!r} (of this config)")
        return cell

    def cells_of(self, experiment: str) -> list[Cell]:
        return self.grids[experiment].cells

    def experiment(self, name: str) -> dict:
        return self.config["experiments"][name]

    def experiments_of_kind(self, kind: str) -> list[str]:
        return [name for name in self.grids if self.experiment(name)["kind"] == kind]

    # -- paths -----------------------------------------------------------------------------
    def cell_path(self, cell: Cell) -> str:
        """The cell's folder below ``runs/``: its axes path, then ``h~<spec hash>`` (the ``{cell}`` wildcard)."""
        return f"{cell.path}/{hash_segment(self.spec_hash(cell))}"

    def run_dir(self, cell: Cell) -> str:
        return f"{self.results}/{cell.experiment}/runs/{self.cell_path(cell)}"

    def checkpoint_dir(self, cell: Cell) -> str:
        return f"{self.checkpoints}/{cell.experiment}/runs/{self.cell_path(cell)}"

    def beton_file(self, experiment: str, dataset: str, stem: str) -> str:
        return f"{self.results}/datasets/{experiment}/{dataset}/{stem}.beton"

    def beton_paths(self, experiment: str) -> dict[str, str]:
        """``{data-config key <stem>_beton: path}`` of the .beton files the dataset declares; {} for in-memory data."""
        from bench_powerprop.data.datasets import DATASETS

        dataset = self.experiment(experiment)["data"]["name"]
        return {f"{stem}_beton": self.beton_file(experiment, dataset, stem) for stem in DATASETS.options(dataset).beton_stems()}

    # -- specs and lineage -------------------------------------------------------------------
    def cell_spec(self, cell: Cell) -> CellSpec:
        """The cell's typed training spec, built once from the experiment's typed options."""
        if cell not in self._cell_specs:
            self._cell_specs[cell] = self._build_spec(cell)
        return self._cell_specs[cell]

    def spec(self, cell: Cell) -> dict:
        """The serialised spec (``CellSpec.as_dict``): what the training job is given and the spec hash is taken of."""
        if cell not in self._specs:
            self._specs[cell] = self.cell_spec(cell).as_dict()
        return self._specs[cell]

    def spec_hash(self, cell: Cell) -> str:
        if cell not in self._hashes:
            self._hashes[cell] = cell_hash(self.spec(cell), self._shared_identity)
        return self._hashes[cell]

    def _build_spec(self, cell: Cell) -> CellSpec:
        grid = self.grids[cell.experiment]
        lineage = {relation: self._inherited(parent, step) for relation, (parent, step) in self.parents(cell).items()}
        return CellSpec(cell, **self._experiment_sections_of(cell.experiment), method_options=grid.method_options(cell),
                        tasks=grid.tasks, structure=grid.structure, snapshot_steps=tuple(grid.block_of[cell].snapshot_steps),
                        lineage=lineage)

    def _experiment_sections_of(self, experiment: str) -> dict:
        """The typed sections every cell of ``experiment`` shares (resolved once; specs share them, nobody edits them)."""
        if experiment not in self._experiment_sections:
            from bench_powerprop.data.datasets import resolve_data_config
            from bench_powerprop.models import resolve_model_config

            config = self.experiment(experiment)
            self._experiment_sections[experiment] = {
                "data": {**resolve_data_config(config["data"]), **self.beton_paths(experiment)},
                "model": resolve_model_config(config["model"]),
                "train": self.grids[experiment].train,
            }
        return self._experiment_sections[experiment]

    def parents(self, cell: Cell) -> dict[str, tuple[Cell, int | str]]:
        if cell not in self._parents:
            grid = self.grids[cell.experiment]
            found = {relation: grid.parent(cell, relation) for relation in ("init_from", "mask_from")}
            self._parents[cell] = {relation: value for relation, value in found.items() if value is not None}
        return self._parents[cell]

    def _inherited(self, parent: Cell, step: int | str) -> dict:
        return {"path": self.inherited_file(parent, step), "step": step, "parent_spec_hash": self.spec_hash(parent)}

    def inherited_file(self, parent: Cell, step: int | str) -> str:
        if step == FINAL:
            return f"{self.run_dir(parent)}/model.pt"
        return f"{self.run_dir(parent)}/snapshots/step_{int(step):08d}.pt"

    def lineage_inputs(self, cell: Cell) -> list[str]:
        """The ``metrics.json`` of the parents a cell's training starts from: it stands for their ``model.pt`` and
        snapshots (training writes it last and declares no other file)."""
        return sorted({f"{self.run_dir(parent)}/metrics.json" for parent, _ in self.parents(cell).values()})

    def training_reads_files(self) -> bool:
        """Whether any training job of the plan reads a file (.beton data or a lineage parent's)."""
        return any(self.beton_paths(name) for name in self.grids) or any(self.parents(cell) for cell in self.cells)

    # -- experiments -------------------------------------------------------------------------
    def manifest(self, experiment: str) -> dict:
        """What an experiment's report reads: its settings and every cell's run directory and spec hash."""
        config = self.experiment(experiment)
        return {
            "experiment": experiment,
            "kind": config["kind"],
            "description": " ".join(config.get("description", "").split()),
            "data": config["data"]["name"],
            "data_config": self.spec(self.cells_of(experiment)[0])["data"],
            "model": self.spec(self.cells_of(experiment)[0])["model"],
            "train": self.spec(self.cells_of(experiment)[0])["train"],
            "methods": config.get("methods", {}),
            "variants": config.get("variants", {}),
            "method_options": self.method_options(experiment),
            "prune": config.get("prune"),
            "cells": [{**cell.as_dict(), "run_dir": self.run_dir(cell), "spec_hash": self.spec_hash(cell),
                       **self.layer_policy(experiment, cell)} for cell in self.cells_of(experiment)],
            **({"reference": self.reference(experiment)} if "reference" in config else {}),
        }

    def layer_policy(self, experiment: str, cell: Cell) -> dict:
        """The cell's dense layers (``dense_layers``: the option or its paper's default) and its paper's
        (``paper_dense_layers``); None for dense methods (``methods._layer_budget``)."""
        from bench_powerprop.methods import METHODS

        method = METHODS.get(cell.method)
        options = self.grids[experiment].method_options(cell)
        chosen = method.dense_layer_policy(options, cell.sparsity)
        return {"dense_layers": chosen, "paper_dense_layers": method.paper_dense_layers(options, cell.sparsity)
                if chosen is not None else None}

    def method_options(self, experiment: str) -> dict[str, dict[str, dict]]:
        """{method: {variant: its options with every default filled in}} of the experiment's cells (as their specs say)."""
        options: dict[str, dict[str, dict]] = {}
        for cell in self.cells_of(experiment):
            options.setdefault(cell.method, {}).setdefault(cell.variant, self.spec(cell)["method_options"])
        return options

    def reference(self, experiment: str) -> dict:
        """The declared reference experiment and its tidy runs table (``runs`` None when it is not active)."""
        declared = self.experiment(experiment)["reference"]
        other = declared["experiment"]
        runs = None
        if other in self.grids:
            runs = self.runs_table(other)
        return {**declared, "runs": runs}

    def runs_table(self, experiment: str) -> str:
        """The experiment's tidy table of every cell's results (its pipeline's ``runs`` table)."""
        return self.experiment_file(experiment, PIPELINES[self.experiment(experiment)["kind"]].tables["runs"])

    def reference_inputs(self, experiment: str) -> list[str]:
        reference = self.experiment(experiment).get("reference")
        return [self.reference(experiment)["runs"]] if reference and reference["experiment"] in self.grids else []

    def experiment_file(self, experiment: str, name: str) -> str:
        return f"{self.outputs}/{experiment}/{name}"

    def check_integrity(self, repair: bool) -> dict[Cell, str]:
        """Finished cells whose files were damaged afterwards (``bench_powerprop.integrity``).

        With ``repair`` their outputs are removed, and so are their experiments' tables and figures
        (Snakemake, like for temporary files, would not rerun a job whose only missing files are
        upstream of up-to-date outputs); the run then retrains those cells, resuming from their
        checkpoints, and rebuilds what depends on them. Either way each damaged cell is reported on
        stderr. Returns ``{cell: what is wrong}`` of the cells left damaged (when not repairing).
        """
        import sys

        from bench_powerprop.integrity import damage, remove_outputs

        damaged, untrained = {}, set()
        for cell in self.cells:
            cell_files = PIPELINES[self.experiment(cell.experiment)["kind"]].cell_files
            reason = damage(self.run_dir(cell), cell_files, self.spec_hash(cell))
            if reason is None:
                if repair and not Path(self.run_dir(cell), "metrics.json").is_file():
                    untrained.add(cell.experiment)
                continue
            print(f"bench_powerprop: {self.run_dir(cell)}: {reason}; {self._repair_action(cell, repair)}", file=sys.stderr)
            damaged[cell] = reason
            if repair:
                remove_outputs(self.run_dir(cell), cell_files)
        if repair:
            self._remove_derived({cell.experiment for cell in damaged} | untrained)
            return {}
        return damaged

    def _remove_derived(self, experiments: set[str]) -> None:
        """Remove the tables and figures of ``experiments`` (cells of theirs are retrained) and, if any existed, the claims
        read from them: should a retrain fail, no table, claim or report keeps rows of a cell without results."""
        from bench_powerprop.integrity import remove_outputs

        removed = False
        for experiment in experiments:
            outputs = PIPELINES[self.experiment(experiment)["kind"]].outputs
            removed |= any(Path(self.experiment_file(experiment, name)).exists() for name in outputs)
            remove_outputs(f"{self.outputs}/{experiment}", outputs, keep_training=True)
        if removed:
            for claims in Path(self.reproduction_dir).glob("claims*"):
                claims.unlink()

    @property
    def reproduction_dir(self) -> str:
        """The claims and provenance pages, beside the experiments' folders."""
        return f"{self.outputs}/reproduction"

    def report_notice(self) -> str:
        """What a report built now must say on its front page (reStructuredText): the cells of the config without
        up-to-date results; "" when every cell has them."""
        problems = [(cell, state) for cell, state, _ in self.cell_states() if state != "stale (code)"]
        if not problems:
            return ""
        listed = ", ".join(f"``{self.run_dir(cell)}``" for cell, _ in problems[:5]) + (", …" if len(problems) > 5 else "")
        counts = ", ".join(f"{sum(found == state for _, found in problems)} {state}" for state in ("missing", "damaged")
                           if any(found == state for _, found in problems))
        return (f"{len(problems)} of the config's {len(self.cells)} cells have no results ({counts}: {listed}). Their rows "
                "are missing from this report, or its tables predate them: run the workflow (make run) to train them.")

    def _repair_action(self, cell: Cell, repair: bool) -> str:
        if repair:
            return "retraining it"
        if all(Path(self.run_dir(cell), name).exists() for name in TRAIN_RULE_OUTPUTS):
            return ("a real run retrains it, removing its outputs first (this dry run cannot list that job: "
                    "Snakemake sees every output file present)")
        return "a real run retrains it"

    def targets(self) -> list[str]:
        """Every experiment's tables and figures, and the ``metrics.json`` of every cell that has none in an
        experiment some of whose outputs exist: a cell whose run directory was deleted after its tables were made is
        then retrained (and its tables rebuilt), not skipped as a missing intermediate. (Listing every cell's
        metrics.json instead costs Snakemake ~60 µs per cell to plan.)"""
        targets = []
        for name in self.grids:
            outputs = [self.experiment_file(name, output) for output in PIPELINES[self.experiment(name)["kind"]].outputs]
            targets += outputs
            if any(Path(path).exists() for path in outputs):
                targets += [path for path in (f"{self.run_dir(cell)}/metrics.json" for cell in self.cells_of(name))
                            if not Path(path).exists()]
        return targets

    def cell_states(self) -> list[tuple[Cell, str, str]]:
        """``(cell, state, reason)`` of every cell that needs work: state ``missing``, ``damaged`` or ``stale (code)``
        (``python -m bench_powerprop status``). A cell whose config changed names another run folder (its spec hash
        changed): it is ``missing`` until trained, and the other spec's results stay where they are."""
        from bench_powerprop.integrity import damage, recorded_code_version, source_hash

        states = []
        for cell in self.cells:
            run_dir = self.run_dir(cell)
            reason = damage(run_dir, PIPELINES[self.experiment(cell.experiment)["kind"]].cell_files, self.spec_hash(cell))
            if reason is not None:
                states.append((cell, "damaged", reason))
            elif not Path(run_dir, "metrics.json").is_file():
                states.append((cell, "missing", "not trained (no metrics.json)"))
            else:
                stale = self._stale_code(source_hash(cell.method), recorded_code_version(run_dir))
                if stale:
                    states.append((cell, "stale (code)", stale))
        return states

    @staticmethod
    def _stale_code(current: str, recorded: dict | None) -> str | None:
        if recorded is None:
            return "run.json records no code version (trained before code versions were kept)"
        if recorded.get("source_hash") != current:
            dirty = ", uncommitted changes" if recorded.get("dirty") else ""
            return (f"trained by sources {recorded.get('source_hash')} (commit {str(recorded.get('commit'))[:12]}{dirty}); "
                    f"its sources are now {current}")
        return None

    def outputs_state(self, experiment: str) -> str | None:
        """Why the experiment's tables and figures need a run (not all built, or built from other cells than the
        config names: another config's, or an override's), or None."""
        from bench_powerprop.io import read_json

        outputs = [self.experiment_file(experiment, name) for name in PIPELINES[self.experiment(experiment)["kind"]].outputs]
        missing = sum(not Path(path).is_file() for path in outputs)
        if missing:
            return f"{missing} of its {len(outputs)} tables and figures not built"
        try:
            built_from = {cell["spec_hash"] for cell in read_json(self.experiment_file(experiment, "manifest.json"))["cells"]}
        except (OSError, ValueError, KeyError, TypeError):
            return "its manifest.json is missing or unreadable"
        if built_from != {self.spec_hash(cell) for cell in self.cells_of(experiment)}:
            return ("its tables and figures were built from other cells (another config or an override; an override "
                    "with its own output name, make run OUTPUT=NAME, keeps both)")
        return None

def write_manifest(path: str, log_path: str, manifest: dict) -> None:
    """The manifest rule's action (workflow/scripts/manifest.py: the manifest never crosses a command line)."""
    write_json_atomic(path, manifest)
    write_text_atomic(log_path, f"manifest of {manifest['experiment']}: {len(manifest['cells'])} cells\n")
