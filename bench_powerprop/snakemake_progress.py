"""``make run``'s one progress display: Snakemake runs as a child process, its whole log goes to a file, and the
terminal shows jobs done of total, cells trained, failures, elapsed and estimated time left.

On a terminal the line is redrawn in place; otherwise (CI, a pipe) it is printed now and then. Snakemake's exit
status is returned unchanged. The lines parsed are Snakemake's own (9.x): ``N of M steps (x%) done``,
``Finished jobid: N (Rule: R)``, ``Error in rule R:``, the ``Job stats`` table and each job's ``wildcards:``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

STEPS = re.compile(r"^(\d+) of (\d+) steps \(.*\) done")
FINISHED = re.compile(r"^Finished jobid: \d+ \(Rule: (\S+)\)")
FAILED = re.compile(r"^Error in rule (\S+):")
STARTED = re.compile(r"^(?:local)?rule (\S+):$")
WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")
JOB_COUNT = re.compile(r"^(\S+)\s+(\d+)$")
LOG_OF_JOB = re.compile(r"^\s+log: (\S+)")
#: lines shown as they come: what Snakemake says once about the whole run
PASSED_THROUGH = ("Nothing to be done", "Report created", "Will exit after finishing currently running jobs")
TRAINING_RULE = "train"
#: seconds between two progress lines when the output is no terminal
LINE_EVERY_S = 30.0
#: seconds between two redraws of the line on a terminal (Snakemake writes dozens of log lines a second)
REDRAW_EVERY_S = 0.25


@dataclass
class Progress:
    """What the log has said so far."""

    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    cells_total: int = 0
    cells_trained: int = 0
    failures: list[str] = field(default_factory=list)
    current: str = ""
    _rule: str = ""
    _in_stats: bool = False
    _in_error: str = ""

    def read(self, line: str) -> str | None:
        """Take one log line; return a line to show as it is (a failure, a message about the whole run), else None."""
        text = line.rstrip("\n")
        if text.startswith("Job stats:"):
            self._in_stats = True
        elif self._in_stats:
            self._read_stats(text)
        if match := STEPS.match(text):
            self.done, self.total = int(match[1]), int(match[2])
        elif match := FINISHED.match(text):
            self.cells_trained += match[1] == TRAINING_RULE
        elif match := STARTED.match(text):
            self._rule = match[1]
        elif (match := WILDCARDS.match(text)) and self._rule:
            self.current = f"{self._rule} {match[1]}"
        elif match := FAILED.match(text):
            self._in_error = match[1]
            self.failures.append(match[1])
            return f"FAILED: rule {match[1]}"
        elif self._in_error and (match := LOG_OF_JOB.match(text)):
            self._in_error = ""
            return f"  its log: {match[1]}"
        if text.startswith(PASSED_THROUGH):
            return text
        return None

    def _read_stats(self, text: str) -> None:
        if match := JOB_COUNT.match(text.strip()):
            name, count = match[1], int(match[2])
            if name == "total":
                self._in_stats = False
                self.total = self.total or count
            elif name == TRAINING_RULE:
                self.cells_total = count

    def line(self, now: float | None = None) -> str:
        elapsed = (time.monotonic() if now is None else now) - self.started
        parts = [f"jobs {self.done}/{self.total or '?'}"]
        if self.cells_total:
            parts.append(f"cells trained {self.cells_trained}/{self.cells_total}")
        parts.append(f"failures {len(self.failures)}")
        parts.append(f"elapsed {clock(elapsed)}")
        if 0 < self.done < self.total:
            parts.append(f"left ~{clock(elapsed / self.done * (self.total - self.done))}")
        return " | ".join(parts)


def clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Display:
    """The progress line: redrawn in place on a terminal (and every second by a timer), else printed now and then."""

    def __init__(self, progress: Progress, stream, tty: bool):
        self.progress, self.stream, self.tty = progress, stream, tty
        self.lock = threading.Lock()
        self.last_line_at = 0.0
        self.stopped = threading.Event()

    def show(self, message: str | None = None) -> None:
        with self.lock:
            now = time.monotonic()
            if self.tty:
                if not message and now - self.last_line_at < REDRAW_EVERY_S:
                    return
                self.last_line_at = now
                width = shutil.get_terminal_size().columns - 1
                if message:
                    self.stream.write(f"\r\x1b[K{message}\n")
                latest = f" | started: {self.progress.current}" if self.progress.current else ""
                self.stream.write(f"\r\x1b[K{(self.progress.line() + latest)[:width]}")
            else:
                if message:
                    self.stream.write(message + "\n")
                if now - self.last_line_at >= LINE_EVERY_S:
                    self.last_line_at = now
                    self.stream.write(self.progress.line() + "\n")
            self.stream.flush()

    def tick(self) -> None:
        while not self.stopped.wait(1.0):
            self.show()

    def finish(self) -> None:
        self.stopped.set()
        with self.lock:
            self.stream.write(("\r\x1b[K" if self.tty else "") + self.progress.line() + "\n")
            self.stream.flush()


def run(snakemake_args: list[str], log_path: Path, stream=None) -> int:
    """Run ``snakemake *snakemake_args`` (no shell), its output into ``log_path``, the progress onto ``stream``."""
    stream = stream or sys.stdout
    log_path.parent.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    display = Display(progress, stream, tty=stream.isatty())
    stream.write(f"Snakemake's full log: {log_path}\n")
    with open(log_path, "w", encoding="utf-8") as log:
        child = subprocess.Popen(["snakemake", *snakemake_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, bufsize=1, errors="replace")
        if display.tty:
            threading.Thread(target=display.tick, daemon=True).start()
        try:
            for line in child.stdout:
                log.write(line)
                log.flush()
                display.show(progress.read(line))
        except KeyboardInterrupt:
            child.wait()  # Snakemake got the same SIGINT from the terminal and stops its jobs
        status = child.wait()
    display.finish()
    if status != 0:
        stream.write(f"snakemake exited with status {status}; the end of its log:\n")
        stream.write("".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-15:]))
    stream.write(f"Snakemake's full log: {log_path}\n")
    stream.flush()
    return status if status >= 0 else 128 - status  # killed by a signal: the shell's code for it
