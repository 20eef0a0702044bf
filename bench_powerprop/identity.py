"""What identifies a cell's results: its spec hash, and the run folder named by it (docs/identity.md).

A training spec (``Plan.spec``) says everything a job needs, including things that cannot change
its results: where files lie (the ``.beton`` files, a lineage parent's path, a dataset's ``root``)
and switches such as ``train.tensorboard``. A cell's *identity* is its spec without those, and
without every option at the ``neutral`` value it declares (``bench_powerprop.options.option``):
the value that reproduces the behaviour from before the option existed. Its hash, the *spec hash*,
names the cell's run folder (``…/seed~0/h~<spec hash>``) and is recorded in every file training
writes, so a folder holds only results of the spec it is named after. Torch-free.
"""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path

from bench_powerprop.io import spec_hash as _hash

#: prefix of the last path segment of a run folder: ``h~`` + the cell's spec hash
HASH_PREFIX = "h~"
HASH_PATTERN = "[0-9a-f]{16}"
#: keys of a lineage entry that locate the parent's file (its spec hash identifies it)
LINEAGE_LOCATION = ("path",)


def spec_identity(spec: dict, shared: dict | None = None) -> dict:
    """The part of a training spec that can change the cell's results (what its hash is taken of).

    ``shared``: a memo of section identities by the section object's ``id`` (the plan's specs share their
    experiment's sections; the caller keeps those objects alive as long as the memo).
    """
    from bench_powerprop.methods import METHODS
    from bench_powerprop.models import MODELS
    from bench_powerprop.training.options import TrainOptions

    def memoised(section, compute):
        if shared is None:
            return compute(section)
        key = id(section)
        if key not in shared:
            shared[key] = compute(section)
        return shared[key]

    identity = dict(spec)
    identity["train"] = memoised(spec["train"], TrainOptions.identity_of)
    identity["data"] = memoised(spec["data"], data_identity)
    identity["model"] = memoised(spec["model"], lambda section: section_identity(MODELS, section))
    if "method_options" in spec and spec["method"] in METHODS:
        options = METHODS.options(spec["method"])
        identity["method_options"] = memoised(spec["method_options"], lambda section: options.identity_of(section or {}))
    if "lineage" in spec:
        identity["lineage"] = {relation: {key: value for key, value in entry.items() if key not in LINEAGE_LOCATION}
                               for relation, entry in spec["lineage"].items()}
    return identity


def section_identity(registry, section: dict) -> dict:
    """A ``{name: ..., option: value}`` section of ``registry`` as it enters the identity."""
    name = section.get("name")
    if name not in registry:
        return dict(section)
    return {"name": name, **registry.options(name).identity_of({k: v for k, v in section.items() if k != "name"})}


def data_identity(data: dict) -> dict:
    """The data section's identity; a dataset built over another (``permuted``'s ``base``) hashes its base the same way."""
    from bench_powerprop.data.datasets import DATASETS

    identity = section_identity(DATASETS, data)
    return {key: data_identity(value) if isinstance(value, dict) and "name" in value else value
            for key, value in identity.items()}


def cell_hash(spec: dict, shared: dict | None = None) -> str:
    """The spec hash of a cell: the hash of its identity (16 hex digits)."""
    return _hash(spec_identity(spec, shared))


def hash_segment(spec_hash: str) -> str:
    """The last segment of a run folder's path."""
    return f"{HASH_PREFIX}{spec_hash}"


def folder_hash(run_dir: str | Path) -> str | None:
    """The spec hash a run folder is named after (None for a folder not named ``h~<hash>``)."""
    name = Path(run_dir).name
    return name[len(HASH_PREFIX):] if name.startswith(HASH_PREFIX) else None


# -- the spec hash a model file records, read without unpickling ---------------------------------
STRING_OPCODES = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
MEMO_PUT = {"BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"}
MEMO_GET = {"BINGET", "LONG_BINGET", "GET"}
POP_MARK = {"SETITEMS", "APPENDS", "TUPLE", "LIST", "DICT", "FROZENSET", "ADDITEMS", "OBJ", "INST", "POP_MARK"}


class ModelFileError(ValueError):
    """A file that is not a model file the harness wrote; ``str(error)`` is one line."""


def recorded_spec_hash(path: str | Path) -> str | None:
    """The ``spec_hash`` a ``model.pt`` or snapshot (a torch zip file) records, None when it records none.

    Read from the zip's pickle by disassembling its opcodes (``pickletools``), never by unpickling it:
    nothing in the file runs, torch is not imported, and the tensors' storages are not read (a large
    model costs what its few-kilobyte pickle costs). Raises ``ModelFileError`` for a file that is not a
    torch zip file.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            if len(names) != 1:
                raise ModelFileError(f"{path}: not a torch model file (no single data.pkl)")
            with archive.open(names[0]) as stream:  # read only as far as the key (the harness writes it first)
                return _first_string_under(stream, "spec_hash", str(path))
    except (OSError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path}: not a torch model file ({error})") from None


def _first_string_under(stream, key: str, where: str) -> str | None:
    """The string stored under ``key`` in a pickled dict whose keys are strings (the first occurrence)."""
    memo: dict[int, str] = {}
    memo_count = depth = 0  # depth: open MARKs; the top-level dict's items are at depth 1
    last_string: str | None = None
    want_value = False
    try:
        for opcode, argument, _ in pickletools.genops(stream):
            name = opcode.name
            if name == "MARK":
                depth += 1
            elif name in POP_MARK:
                depth -= 1
            if name in MEMO_PUT:
                index = memo_count if name == "MEMOIZE" else argument
                memo_count += 1
                if last_string is not None:
                    memo[index] = last_string
                continue
            if name in STRING_OPCODES or name in MEMO_GET:
                value = argument if name in STRING_OPCODES else memo.get(argument)
                if want_value:
                    return value if isinstance(value, str) else None
                want_value = value == key and depth == 1
                last_string = value if isinstance(value, str) else None
                continue
            if want_value:  # the key was followed by something that is not a string
                return None
            last_string = None
    except ValueError as error:
        raise ModelFileError(f"{where}: its pickle does not parse ({error})") from None
    return None


class RecordedAs(str):
    """A rule parameter whose text reaches the job whole while Snakemake records only ``recorded`` for it.

    Snakemake's ``params`` rerun trigger compares the ``repr`` of each parameter with the one recorded
    when the output was made. A training job's ``--spec`` also carries what is not its identity (paths,
    ``train.tensorboard``) and its ``--checkpoint-dir`` is a location: recording their identity instead
    (the spec hash; nothing for a location) keeps a logging switch or an absolute path from retraining
    a cell whose results it cannot change.
    """

    recorded: str

    def __new__(cls, text: str, recorded: str):
        value = super().__new__(cls, text)
        value.recorded = recorded
        return value

    def __repr__(self) -> str:
        return repr(self.recorded)
