"""Atomic file writes and run provenance (spec hash, git commit, versions, host/SLURM ids)."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

PROVENANCE_PACKAGES = ("torch", "numpy", "scikit-learn", "pandas", "snakemake", "timm", "ffcv")
SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NODELIST", "SLURM_RESTART_COUNT")


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class WriteError(RuntimeError):
    """An output that cannot be written (disk full, read-only or unwritable folder); ``str()`` is one line naming the
    path and the free space of its filesystem."""


#: Failures of a write that the user fixes outside the harness (free space, permissions), told as one line.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def write_error(path: Path, error: OSError, action: str = "write") -> WriteError:
    try:
        free = f"{shutil.disk_usage(next(p for p in (path.parent, *path.parents) if p.exists())).free / 2**20:.1f} MB free"
    except (OSError, StopIteration):
        free = "free space unknown"
    return WriteError(f"cannot {action} {path}: {error.strerror or error} ({free} on its filesystem); "
                      "free space or make the folder writable, then rerun")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The file gets the mode a plain ``open`` would give it under the user's umask (``mkstemp``
    creates it 0600, which would survive the rename and hide results from the user's group).
    A full disk or a read-only folder is a ``WriteError`` naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            raise write_error(path, error) from None
        raise
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv_atomic(path, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_figure_atomic(figure, path, **kwargs) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=Path(path).suffix.lstrip("."), **kwargs)


class NotRegularFileError(OSError):
    """A FIFO, device or folder where the harness expects a file: refused, never read (reading a FIFO blocks)."""


def open_regular(path, mode: str = "r"):
    """``open(path, mode)`` for reading, refusing anything but a regular file without blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFileError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def read_json(path):
    with open_regular(path) as handle:
        return json.load(handle)


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()[:16]


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def git_state() -> tuple[str, bool]:
    """(HEAD commit or 'unknown', whether tracked files differ from it)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True,
                               check=False)
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit.stdout.strip(), bool(dirty.stdout.strip())


def git_commit() -> str:
    """The HEAD commit, with "-dirty" when tracked files have uncommitted changes."""
    commit, dirty = git_state()
    return commit + ("-dirty" if dirty and commit != "unknown" else "")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "bench_powerprop": _version("bench-powerprop")}
    versions.update({name: _version(name) for name in PROVENANCE_PACKAGES})
    return {name: version for name, version in versions.items() if version}


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def provenance() -> dict:
    return {
        "git_commit": git_commit(),
        "versions": package_versions(),
        "host": platform.node(),
        "platform": platform.platform(),
        "slurm": {name: os.environ[name] for name in SLURM_VARIABLES if name in os.environ},
        "command": sys.argv,
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
