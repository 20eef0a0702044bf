"""Snapshots a run writes, and what a cell inherits from another cell (open_lth's branches).

A run can declare ``snapshot_steps`` (e.g. ``[0, 100]``): the trainer saves the model — weights
φ and the masks installed on it — at those steps into ``{checkpoint_dir}/snapshots/`` (outside
Snakemake's outputs, so a killed run keeps them) and publishes them at the end into the run
directory's ``snapshots/`` folder, a Snakemake output. Step k means after k optimizer steps; step
0 is the initial model after the method's ``prepare`` (its initial mask included).

A cell may declare ``init_from`` and ``mask_from``: another cell and a step (``final`` for the
trained model). The workflow resolves them into the files of that cell (real Snakemake inputs)
and records the paths and the parent's spec hash in the spec (``lineage``). The trainer then:

* ``init_from``: loads the parent's weights and biases (not its masks) into the fresh model —
  bitwise the parent's φ when both use the same α, else θ re-expressed as φ for this cell's α;
* ``mask_from``: hands the parent's forward mask to the method (``ctx.lineage.mask``); methods
  that use one declare ``accepts_mask_from``. ``ctx.lineage.mask_source`` is that parent's whole
  saved model (weights too): iterative pruning ranks the parent's trained weights.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench_powerprop import masks
from bench_powerprop.io import write_bytes_atomic, write_json_atomic
from bench_powerprop.powerprop import MASK_BUFFERS, model_alpha, phi_from_theta, theta_from_phi, weight_layers

INDEX = "index.json"


class LineageError(ValueError):
    """An inherited file that is not the one the cell's spec names; ``str(error)`` is one line."""


def load_model_file(path: str | Path) -> dict:
    """A ``model.pt``, snapshot or checkpoint as data only (tensors, numbers, strings, containers): a file whose
    pickle would build any other object — run code — is refused by ``torch.load(weights_only=True)``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise LineageError(f"{path}: not a model file the harness wrote, refused ({type(error).__name__}: {first_line})") from None


def snapshot_name(step: int) -> str:
    return f"step_{step:08d}.pt"


class SnapshotStore:
    """Saves the model at the declared steps; ``publish`` copies them into the run directory."""

    def __init__(self, directory: Path, steps, spec_hash: str):
        self.directory, self.steps = Path(directory), sorted({int(step) for step in steps})
        self.spec_hash = spec_hash

    def take_if_due(self, model: nn.Module, step: int) -> None:
        if step in self.steps:
            buffer = io.BytesIO()
            payload = {"step": step, "alpha": model_alpha(model), "spec_hash": self.spec_hash, "state_dict": model.state_dict()}
            torch.save(payload, buffer)
            write_bytes_atomic(self.directory / snapshot_name(step), buffer.getvalue())

    def missing(self, up_to_step: int) -> list[int]:
        return [step for step in self.steps if step <= up_to_step and not (self.directory / snapshot_name(step)).is_file()]

    def publish(self, run_dir: Path) -> None:
        """Copy every snapshot into ``run_dir/snapshots`` and write its index (always, even if empty)."""
        target = Path(run_dir) / "snapshots"
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise LineageError(f"{target}: not a folder of the run directory (a symbolic link or a file); the harness "
                               "writes snapshots only into the results folder itself: remove it, then rerun")
        target.mkdir(parents=True, exist_ok=True)
        for step in self.steps:
            with open(self.directory / snapshot_name(step), "rb") as source:
                write_bytes_atomic(target / snapshot_name(step), source.read())
        write_json_atomic(target / INDEX, {"steps": self.steps, "spec_hash": self.spec_hash})


@dataclass
class Inherited:
    """A parent's saved model: its weights φ (with mask buffers), its α, and its step."""

    state_dict: dict
    alpha: float
    step: int | str
    path: str = ""

    @classmethod
    def load(cls, path: str | Path, step: int | str, parent_spec_hash: str | None = None) -> Inherited:
        """The parent's file; with ``parent_spec_hash`` (what the child's spec records) the file must have been
        written for exactly that parent spec, else ``LineageError``."""
        payload = load_model_file(path)
        if parent_spec_hash is not None and payload.get("spec_hash") != parent_spec_hash:
            raise LineageError(f"lineage: {path} was written for spec {payload.get('spec_hash')!r}, but this cell inherits "
                               f"from spec {parent_spec_hash!r}; rerun the workflow to rebuild the parent")
        alpha = payload["alpha"] if "alpha" in payload else payload["spec"]["alpha"]
        return cls(payload["state_dict"], float(alpha), step, str(path))

    def thetas(self, names) -> dict[str, torch.Tensor]:
        """The parent's effective weights θ (without its mask) of the named layers."""
        return {name: theta_from_phi(self.state_dict[name], self.alpha) for name in names}

    def mask(self) -> masks.Mask | None:
        layers = {key[: -len("weight_mask")] + "weight": value > 0 for key, value in self.state_dict.items()
                  if key.endswith(".weight_mask") and value is not None}
        return masks.Mask(layers) if layers else None

    @torch.no_grad()
    def load_weights_into(self, model: nn.Module, alpha: float) -> None:
        weights = {key: value for key, value in self.state_dict.items() if not key.endswith(MASK_BUFFERS)}
        if alpha != self.alpha:
            for name in weight_layers(model):
                weights[name] = phi_from_theta(theta_from_phi(weights[name], self.alpha), alpha)
        missing, unexpected = model.load_state_dict(weights, strict=False)
        unexpected = [key for key in unexpected if not key.endswith(MASK_BUFFERS)]
        if [key for key in missing if not key.endswith(MASK_BUFFERS)] or unexpected:
            raise ValueError(f"lineage: the parent's model does not match this cell's (missing {missing}, unexpected {unexpected})")


@dataclass
class Lineage:
    """What this cell inherits: ``init`` (``init_from``) and ``mask_source`` (``mask_from``), each a parent's saved model."""

    init: Inherited | None = None
    mask_source: Inherited | None = None

    @classmethod
    def from_spec(cls, spec) -> Lineage:
        """What a ``CellSpec``'s lineage names, loaded."""
        declared = spec.lineage
        loaded = {relation: Inherited.load(declared[relation]["path"], declared[relation]["step"],
                                           declared[relation].get("parent_spec_hash"))
                  for relation in ("init_from", "mask_from") if relation in declared}
        return cls(loaded.get("init_from"), loaded.get("mask_from"))

    @property
    def mask(self) -> masks.Mask | None:
        """The inherited forward mask (None without ``mask_from``); a dense parent is an error here,
        because a method asking for a mask would otherwise silently train without one."""
        if self.mask_source is None:
            return None
        mask = self.mask_source.mask()
        if mask is None:
            raise ValueError(f"lineage.mask_from: {self.mask_source.path} holds no mask (a dense model)")
        return mask

    def apply_init(self, model: nn.Module, alpha: float) -> None:
        if self.init is not None:
            self.init.load_weights_into(model, alpha)

