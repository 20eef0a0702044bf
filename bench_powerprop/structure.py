"""Sparsity structure of a mask, declared per experiment (torch-free: parsed at config validation).

``structure`` in an experiment's config is one of

* ``unstructured`` (the default): any weights may be kept;
* ``{n_of_m: {n: 2, m: 4}}``: weights form groups of m consecutive inputs of one output unit (for a
  convolution, one kernel position), and a group keeps exactly n of them or, where the layer is not
  pruned that far, all m (NVIDIA ASP's ``m4n2_1d`` groups; the semi-structured 2:4 GPU format);
* ``channel``: whole output units (rows of a Linear weight, filters of a convolution) are kept or
  removed; the output layer is never channel-pruned (its rows are the classes);
* ``{block: {rows: r, cols: c}}``: r×c tiles of the (output, input) weight matrix (a convolution's
  kernel positions inside the tile) are kept or removed together.

Masks with a structure are built by ``bench_powerprop.masks`` and checked by ``Mask`` itself; see
``docs/structure.md`` and the references in ``docs/fidelity.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.errors import OptionError

KINDS = ("unstructured", "n_of_m", "channel", "block")


@dataclass(frozen=True)
class Structure:
    kind: str = "unstructured"
    n: int = 0
    m: int = 0
    rows: int = 0
    cols: int = 0

    @property
    def unstructured(self) -> bool:
        return self.kind == "unstructured"

    def label(self) -> str:
        """Short name for tables and file names: ``unstructured``, ``2:4``, ``channel``, ``block4x4``."""
        if self.kind == "n_of_m":
            return f"{self.n}:{self.m}"
        if self.kind == "block":
            return f"block{self.rows}x{self.cols}"
        return self.kind

    def as_config(self):
        if self.kind == "n_of_m":
            return {"n_of_m": {"n": self.n, "m": self.m}}
        if self.kind == "block":
            return {"block": {"rows": self.rows, "cols": self.cols}}
        return self.kind

    def lowest_density(self) -> float:
        """The smallest fraction of a layer this structure can keep (n/m for N:M; otherwise no limit)."""
        return self.n / self.m if self.kind == "n_of_m" else 0.0


UNSTRUCTURED = Structure()


def parse_structure(value, where: str = "structure") -> Structure:
    """A config value as a ``Structure``; ``OptionError`` (one line naming ``where``) when malformed."""
    if value is None or value == "unstructured":
        return UNSTRUCTURED
    if value == "channel":
        return Structure("channel")
    if isinstance(value, dict) and len(value) == 1:
        (kind, body), = value.items()
        fields = {"n_of_m": ("n", "m"), "block": ("rows", "cols")}.get(kind)
        if fields is not None:
            if not isinstance(body, dict) or set(body) != set(fields):
                raise OptionError(f"{where}.{kind}: must be a mapping with exactly {' and '.join(fields)}, got {body!r}")
            for key in fields:
                if isinstance(body[key], bool) or not isinstance(body[key], int) or body[key] < 1:
                    raise OptionError(f"{where}.{kind}.{key}: must be an integer >= 1, got {body[key]!r}")
            if kind == "n_of_m" and not body["n"] < body["m"]:
                raise OptionError(f"{where}.n_of_m.n: must be smaller than m ({body['m']}), got {body['n']}")
            return Structure(kind, **{key: body[key] for key in fields})
    raise OptionError(f"{where}: must be unstructured, channel, {{n_of_m: {{n: N, m: M}}}} or "
                      f"{{block: {{rows: R, cols: C}}}}, got {value!r}")
