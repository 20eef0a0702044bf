"""Checksummed, atomically written training checkpoints with fall-back to the previous good one.

Each checkpoint is ``step_XXXXXXXX.pt`` plus a ``.sha256`` sidecar written after it;
a checkpoint whose sidecar is missing or does not match is skipped, never loaded.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
from pathlib import Path

import torch
from torch import nn

from bench_powerprop.data.tasks import build_task
from bench_powerprop.io import file_sha256, write_bytes_atomic, write_text_atomic
from bench_powerprop.models import build_model
from bench_powerprop.powerprop import powerpropify, restore_layer_alphas
from bench_powerprop.training.lineage import load_model_file

log = logging.getLogger(__name__)


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"step_{step:08d}.pt"


def save_checkpoint(directory: Path, step: int, state: dict, keep: int = 2) -> Path:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = checkpoint_path(directory, step)
    write_bytes_atomic(path, buffer.getvalue())
    write_text_atomic(_sidecar(path), file_sha256(path) + "\n")
    _remove_all_but_newest(Path(directory), keep)
    return path


def load_checkpoint(path: Path) -> dict:
    """A checkpoint as data only: tensors, numbers, strings and containers (``weights_only``), never code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_latest_checkpoint(directory: Path, owner: dict | None = None) -> dict | None:
    """The newest checkpoint that verifies, loads and belongs to ``owner``, or None when there is none.

    A checkpoint whose checksum fails, or that matches its checksum but does not load as data
    (written by another version, or a pickle that would run code), is skipped with a warning naming
    the file; the previous one is tried. With ``owner`` (e.g. ``{"spec_hash": ..., "code_hash": ...}``)
    a checkpoint recording other values — another cell's, or one written by other code — is refused:
    renamed to ``*.refused`` (so it never shadows this cell's own checkpoints again) and the
    previous one is tried.
    """
    for path in reversed(_checkpoints(Path(directory))):
        if not _verified(path):
            log.warning("checkpoint %s failed its checksum; falling back to an older one", path)
            continue
        try:
            state = load_checkpoint(path)
        except Exception as error:
            log.warning("checkpoint %s does not load as data (%s: %s); falling back to an older one",
                        path, type(error).__name__, str(error).splitlines()[0] if str(error) else "")
            continue
        foreign = {key: state.get(key) for key, value in (owner or {}).items() if state.get(key) != value}
        if foreign:
            log.warning("refusing checkpoint %s: written with %s, this run has %s; renamed to %s.refused", path, foreign,
                        {key: owner[key] for key in foreign}, path.name)
            refuse(path)
            continue
        return state
    return None


def refuse(path: Path) -> None:
    """Move a checkpoint that is not this run's out of the way (kept for inspection, never loaded)."""
    path.replace(path.with_name(path.name + ".refused"))
    _sidecar(path).unlink(missing_ok=True)


def _verified(path: Path) -> bool:
    sidecar = _sidecar(path)
    return sidecar.is_file() and sidecar.read_text().strip() == file_sha256(path)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _checkpoints(directory: Path) -> list[Path]:
    return sorted(directory.glob("step_*.pt")) if directory.is_dir() else []


def _remove_all_but_newest(directory: Path, keep: int) -> None:
    for path in _checkpoints(directory)[:-keep]:
        path.unlink(missing_ok=True)
        _sidecar(path).unlink(missing_ok=True)


class CheckpointDirectoryError(RuntimeError):
    """The checkpoint directory cannot be used; raised before any training step is spent."""


def prepare_directory(directory: Path) -> Path:
    """Create ``directory`` and prove it is writable now, not at the first checkpoint after hours of training."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".writable"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise CheckpointDirectoryError(f"checkpoint_dir: cannot write checkpoints to {directory} ({error.strerror or error})") from None
    return directory


class CellLock:
    """An exclusive lock on one cell's checkpoint directory, held while it trains.

    A second process for the same cell (e.g. a rerun while a training job orphaned by a killed
    ``snakemake`` still runs) fails at once with a message naming the holder, instead of two
    processes writing the same checkpoints and outputs. The lock is released when the process
    ends, however it ends (``flock`` locks die with their process).
    """

    def __init__(self, directory: Path):
        self.path = Path(directory) / "train.lock"
        self._handle = None

    def __enter__(self):
        handle = open(self.path, "a+")  # held open for the lock's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise CheckpointDirectoryError(
                f"another process (pid {holder}) is training this cell (lock {self.path}); "
                "wait for it to finish or stop it, then rerun") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None


def load_trained_model(path: Path) -> tuple[nn.Module, dict]:
    """Rebuild a trained cell's model (architecture from its spec) and load its weights."""
    payload = load_model_file(path)  # data only: a model.pt whose pickle would run code is refused
    spec = payload["spec"]
    task = build_task(spec["data"])
    model = build_model(spec["model"], task.input_shape, task.num_classes)
    powerpropify(model, spec["alpha"])
    model.load_state_dict(payload["state_dict"])
    restore_layer_alphas(model, payload.get("layer_alpha", {}))  # α may have changed in training (adaptive_alpha)
    return model, spec
