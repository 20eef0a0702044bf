"""The training log (``train_log.csv`` rows), its live copies and the progress bar.

While a cell trains, every logged row is appended at once to ``train_log.live.csv`` in its run
directory (``tail -f`` it; a killed job leaves its curve there) and, with ``train.tensorboard:
true``, to TensorBoard event files in the same directory (``tensorboard --logdir
results/<experiment>``: one run per cell, named by its path, i.e. its axes). Both are rewritten from
the rows kept in the checkpoint when a job resumes, so they never hold the rows of steps a killed
job logged after its last checkpoint. ``train_log.csv``, the Snakemake output, is written once at
the end from the same rows (byte-identical whether or not the job was resumed) and the live file
is then removed.
"""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path

LOG_COLUMNS = ["step", "phase", "loss", "batch_accuracy", "lr", "val_accuracy"]
#: the columns of a run's ``gradient_norms.csv`` (the gradient-flow probe, ``bench_powerprop.training.probes``)
GRADIENT_NORM_COLUMNS = ["step", "grad_norm", "grad_norm_theta"]


def csv_text(rows: list[dict], columns: list[str]) -> str:
    """Rows as CSV (the csv module, not pandas: pandas would add 0.3 s to every training job's start-up)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class TrainLog:
    """Rows every ``log_every`` steps (validation accuracy every ``eval_every``), kept in checkpoints."""

    def __init__(self, log_every: int, eval_every: int):
        self.log_every, self.eval_every = log_every, eval_every
        self.rows: list[dict] = []
        self.sinks: list = []

    def due(self, step: int) -> bool:
        return step % self.log_every == 0

    def eval_due(self, step: int) -> bool:
        return step % self.eval_every == 0

    def add(self, step: int, phase: str, loss: float, batch_accuracy: float, lr: float, val_accuracy: float = math.nan) -> None:
        self.rows.append({"step": step, "phase": phase, "loss": loss, "batch_accuracy": batch_accuracy, "lr": lr,
                          "val_accuracy": val_accuracy})
        for sink in self.sinks:
            sink.write(self.rows)

    @contextlib.contextmanager
    def streaming(self, sinks: list):
        """Copy each row to ``sinks`` as it is logged; at a normal exit bring them up to every row kept
        (a run resumed after its last step logs none), then close them (also when training fails)."""
        self.sinks = sinks
        try:
            for sink in sinks if self.rows else ():  # resumed: drop what was logged after the checkpoint at once
                sink.write(self.rows)
            yield
            for sink in sinks:
                sink.write(self.rows)
        finally:
            for sink in sinks:
                sink.close()
            self.sinks = []

    def last_loss(self) -> float:
        return self.rows[-1]["loss"] if self.rows else math.nan

    def csv_text(self) -> str:
        return csv_text(self.rows, LOG_COLUMNS)


LIVE_LOG_NAME = "train_log.live.csv"
TENSORBOARD_EVENTS = "events.out.tfevents.*"


class LiveCsv:
    """``train_log.live.csv``: created at the first row (header and the rows so far), then a line per row, flushed."""

    def __init__(self, path: Path):
        self.path, self.handle, self.written = Path(path), None, 0

    def write(self, rows: list[dict]) -> None:
        if self.handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "w")  # noqa: SIM115 (kept open while the job trains)
            self.handle.write(csv_text([], LOG_COLUMNS))
        self.handle.write(csv_text(rows[self.written:], LOG_COLUMNS).split("\n", 1)[1])
        self.handle.flush()
        self.written = len(rows)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


#: TensorBoard tag of each logged column (``val_accuracy`` only at evaluation steps)
TENSORBOARD_TAGS = {"loss": "train/loss", "batch_accuracy": "train/batch_accuracy", "lr": "train/lr",
                    "val_accuracy": "val/accuracy"}


class TensorBoardLog:
    """TensorBoard scalars of the rows, in event files of ``directory``; a new writer replaces the old files."""

    def __init__(self, directory: Path):
        self.directory, self.writer, self.written = Path(directory), None, 0

    def write(self, rows: list[dict]) -> None:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            for old in self.directory.glob(TENSORBOARD_EVENTS):
                old.unlink()
            self.writer = SummaryWriter(str(self.directory))
        for row in rows[self.written:]:
            for column, tag in TENSORBOARD_TAGS.items():
                if not math.isnan(row[column]):
                    self.writer.add_scalar(tag, row[column], row["step"])
        self.writer.flush()
        self.written = len(rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def live_sinks(run_dir: Path, tensorboard: bool) -> list:
    """The live copies of a cell's log in its run directory: the CSV always, TensorBoard when asked for
    (without it, event files an earlier run of the cell left there are removed: they are not this run's curves)."""
    if not tensorboard:
        for old in Path(run_dir).glob(TENSORBOARD_EVENTS):
            old.unlink()
    return [LiveCsv(Path(run_dir) / LIVE_LOG_NAME), *([TensorBoardLog(run_dir)] if tensorboard else [])]


def progress_bar(total: int, initial: int, label: str, enabled: bool):
    """tqdm on stderr: live in a terminal, a line every 10 s in a log file."""
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=label, disable=not enabled,
                mininterval=0.5 if interactive else 10.0, dynamic_ncols=True, file=sys.stderr)
