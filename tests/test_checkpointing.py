"""Checkpoints (training/checkpointing.py) without the trainer: the checksum sidecar, how many are kept, which one a
resume loads (the newest that verifies, loads as data and is this run's), the directory probe and the cell lock."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from pathlib import Path

import pytest
import torch

from bench_powerprop.training.checkpointing import (
    CellLock,
    CheckpointDirectoryError,
    checkpoint_path,
    load_latest_checkpoint,
    prepare_directory,
    save_checkpoint,
)


class Planted:
    """Unpickled, it would create ``marker``: what a checkpoint that runs code does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def names(directory) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_a_checkpoint_has_its_sha256_beside_it_and_only_the_newest_are_kept(tmp_path):
    for step in (1, 20, 3):
        path = save_checkpoint(tmp_path, step, {"step": step, "w": torch.full((2,), float(step))})
        assert path == tmp_path / f"step_{step:08d}.pt" == checkpoint_path(tmp_path, step)
        assert (tmp_path / f"{path.name}.sha256").read_text() == hashlib.sha256(path.read_bytes()).hexdigest() + "\n"
    assert names(tmp_path) == [f"step_{s:08d}.pt{suffix}" for s in (3, 20) for suffix in ("", ".sha256")]
    save_checkpoint(tmp_path, 30, {"step": 30}, keep=1)
    assert names(tmp_path) == ["step_00000030.pt", "step_00000030.pt.sha256"]
    assert load_latest_checkpoint(tmp_path) == {"step": 30}


def test_an_unsigned_checkpoint_a_crash_left_is_pruned_like_the_others(tmp_path):
    save_checkpoint(tmp_path, 1, {"step": 1})
    (tmp_path / "step_00000001.pt.sha256").unlink()  # killed between the checkpoint and its sidecar
    save_checkpoint(tmp_path, 2, {"step": 2}, keep=1)
    assert names(tmp_path) == ["step_00000002.pt", "step_00000002.pt.sha256"]


def test_resume_skips_a_corrupt_an_unsigned_and_an_unloadable_checkpoint(tmp_path):
    assert load_latest_checkpoint(tmp_path / "absent") is None and load_latest_checkpoint(tmp_path) is None
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"step": step}, keep=10)
    data = bytearray(checkpoint_path(tmp_path, 4).read_bytes())
    data[len(data) // 2] ^= 0xFF
    checkpoint_path(tmp_path, 4).write_bytes(bytes(data))  # its sidecar no longer matches
    (tmp_path / "step_00000003.pt.sha256").unlink()  # never signed
    garbage = b"a file whose checksum matches but that is no checkpoint"
    checkpoint_path(tmp_path, 2).write_bytes(garbage)
    (tmp_path / "step_00000002.pt.sha256").write_text(hashlib.sha256(garbage).hexdigest() + "\n")
    assert load_latest_checkpoint(tmp_path) == {"step": 1}
    for step in (2, 3, 4):  # skipped, not removed: kept for inspection
        assert checkpoint_path(tmp_path, step).is_file()


def test_a_checkpoint_of_another_owner_is_renamed_refused_and_the_previous_one_loads(tmp_path):
    save_checkpoint(tmp_path, 1, {"step": 1, "spec_hash": "mine", "code_hash": "c"})
    save_checkpoint(tmp_path, 2, {"step": 2, "spec_hash": "theirs", "code_hash": "c"})
    assert load_latest_checkpoint(tmp_path)["step"] == 2  # no owner: no check
    assert load_latest_checkpoint(tmp_path, {"spec_hash": "theirs", "code_hash": "c"})["step"] == 2
    assert load_latest_checkpoint(tmp_path, {"spec_hash": "mine", "code_hash": "c"})["step"] == 1
    assert names(tmp_path) == ["step_00000001.pt", "step_00000001.pt.sha256", "step_00000002.pt.refused"]
    assert load_latest_checkpoint(tmp_path, {"spec_hash": "mine", "code_hash": "other"}) is None
    assert names(tmp_path) == ["step_00000001.pt.refused", "step_00000002.pt.refused"]


def test_prepare_directory_creates_it_and_names_it_when_it_cannot(tmp_path):
    directory = prepare_directory(tmp_path / "a" / "b")
    assert directory == tmp_path / "a" / "b" and directory.is_dir() and names(directory) == []
    (directory / "step_00000001.pt").write_bytes(b"kept")
    assert prepare_directory(directory) == directory and names(directory) == ["step_00000001.pt"]  # it may exist
    (tmp_path / "file").write_text("x")
    for path, code in ((tmp_path / "file", errno.EEXIST), (tmp_path / "file" / "sub", errno.ENOTDIR)):
        with pytest.raises(CheckpointDirectoryError) as error:
            prepare_directory(path)
        assert str(error.value) == f"checkpoint_dir: cannot write checkpoints to {path} ({os.strerror(code)})"


def test_the_cell_lock_records_its_holder_refuses_a_second_one_and_is_released(tmp_path):
    with CellLock(tmp_path) as lock:
        assert (tmp_path / "train.lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(CheckpointDirectoryError, match=f"another process \\(pid {os.getpid()}\\) is training this cell"):
            CellLock(tmp_path).__enter__()
        assert lock._handle is not None
    assert lock._handle is None
    with CellLock(tmp_path):  # released: a later run takes it
        assert (tmp_path / "train.lock").read_text() == f"{os.getpid()}\n"


def test_a_checkpoint_whose_pickle_would_run_code_is_skipped_naming_the_first_line_of_the_reason(tmp_path, caplog):
    marker = tmp_path / "ran"
    save_checkpoint(tmp_path / "ck", 1, {"step": 1})
    planted = save_checkpoint(tmp_path / "ck", 2, {"step": 2, "payload": Planted(marker)})  # signed: the checksum passes
    with pytest.raises(Exception) as reason:
        torch.load(planted, weights_only=True)
    first, *rest = str(reason.value).splitlines()
    assert rest and not marker.exists()
    with caplog.at_level(logging.WARNING):
        assert load_latest_checkpoint(tmp_path / "ck") == {"step": 1}
    assert not marker.exists()
    messages = [record.getMessage() for record in caplog.records]
    assert f"checkpoint {planted} does not load as data (UnpicklingError: {first}); falling back to an older one" in messages
