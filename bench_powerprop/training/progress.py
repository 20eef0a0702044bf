"""The training log (``train_log.csv`` rows) and the progress bar."""

from __future__ import annotations

import math
import sys

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

    def due(self, step: int) -> bool:
        return step % self.log_every == 0

    def eval_due(self, step: int) -> bool:
        return step % self.eval_every == 0

    def add(self, step: int, phase: str, loss: float, batch_accuracy: float, lr: float, val_accuracy: float = math.nan) -> None:
        self.rows.append({"step": step, "phase": phase, "loss": loss, "batch_accuracy": batch_accuracy, "lr": lr,
                          "val_accuracy": val_accuracy})

    def last_loss(self) -> float:
        return self.rows[-1]["loss"] if self.rows else math.nan

    def csv_text(self) -> str:
        return csv_text(self.rows, LOG_COLUMNS)


def progress_bar(total: int, initial: int, label: str, enabled: bool):
    """tqdm on stderr: live in a terminal, a line every 10 s in a log file."""
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=label, disable=not enabled,
                mininterval=0.5 if interactive else 10.0, dynamic_ncols=True, file=sys.stderr)
