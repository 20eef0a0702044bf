"""Portable mode's float32 GEMM: ``aten::mm`` and ``aten::addmm`` on the CPU through oneDNN (docs/numerics.md).

MKL gives one result on Intel and AMD CPUs only in its ``COMPATIBLE`` branch, which is the slow part of a
portable training step (its AVX2 branch is Intel-only: an AMD CPU takes MKL's automatic branch). oneDNN
picks its matmul kernel by instruction set, not vendor; portable mode caps it at AVX2, and its ``brg_matmul:avx2``
result was measured equal on this AMD host and under emulated Intel (Haswell) and AMD (EPYC-Rome) CPUs,
which report different cache sizes. So in portable mode the 2-D float32 products, the Linear layers' forward
and both of their gradients, go through ``torch.ops.mkldnn._linear_pointwise``; every other case keeps
torch's kernel (MKL, still under ``MKL_CBWR=COMPATIBLE``).
"""

from __future__ import annotations

import torch

_LIBRARY: list = []  # the registration lives as long as the process; installed once


def _routed(*tensors) -> bool:
    return all(t.dtype == torch.float32 and t.layout == torch.strided and t.dim() == 2 and t.numel() > 0
               for t in tensors)


def _linear(x, weight_t, bias=None):
    """``x @ weight_t (+ bias)`` by oneDNN: its linear takes the weight as (out, in), i.e. ``weight_t.t()``."""
    return torch.ops.mkldnn._linear_pointwise(x, weight_t.t(), bias, "none", [], "")


def mm(a, b):
    if _routed(a, b):
        return _linear(a, b)
    return torch.ops.aten.mm.out(a, b, out=a.new_empty((a.shape[0], b.shape[1])))


def addmm(bias, a, b, *, beta=1, alpha=1):
    if beta == 1 and alpha == 1 and _routed(a, b) and bias.dtype == torch.float32 and bias.shape == (b.shape[1],):
        return _linear(a, b, bias)
    out = a.new_empty((a.shape[0], b.shape[1]), dtype=torch.result_type(a, b))
    return torch.ops.aten.addmm.out(bias, a, b, beta=beta, alpha=alpha, out=out)


def install() -> None:
    """Route this process's CPU ``mm``/``addmm`` through oneDNN (idempotent; autograd's formulas are kept)."""
    if _LIBRARY:
        return
    library = torch.library.Library("aten", "IMPL")
    library.impl("mm", mm, "CPU")
    library.impl("addmm", addmm, "CPU")
    _LIBRARY.append(library)


def uninstall() -> None:
    """Back to torch's kernels (the bench's before/after comparison)."""
    while _LIBRARY:
        _LIBRARY.pop()._destroy()


def installed() -> bool:
    return bool(_LIBRARY)
