"""Numerics modes: which CPU kernels torch, MKL, oneDNN, OpenBLAS and numpy may pick (docs/numerics.md).

``portable`` (the default of CPU experiments) pins every choice that makes float results depend on the
machine, so that every x86-64 CPU with AVX2 and FMA, Intel or AMD, computes the same bits: torch's
vectorised kernels at AVX2 (``ATEN_CPU_CAPABILITY``), MKL's conditional-numerical-reproducibility branch
(``MKL_CBWR``), oneDNN's instruction set (``ONEDNN_MAX_CPU_ISA``) and its float mode, OpenBLAS's kernel
family and numpy's SIMD dispatch, and the thread count of every pool. ``native`` leaves every choice to the
libraries (the fastest kernels; the GPU configs' default).

These variables are read when the libraries load or first compute, so ``apply`` must run before torch is
imported, in every process that computes. Torch-free: the CLI calls it before its first torch import.
"""

from __future__ import annotations

import os
import sys

MODES = ("portable", "native")
DEFAULT = "portable"
#: The variable the CLI (and a forked training worker) reads to know its mode; set by ``apply``.
MODE_VARIABLE = "BENCH_POWERPROP_NUMERICS"
#: numpy 2.x's dispatch groups above AVX2 (numpy ignores names it does not build).
NUMPY_ABOVE_AVX2 = "X86_V4 AVX512_ICL AVX512_SPR"

#: What portable mode pins, apart from the thread counts (``thread_environment``).
PORTABLE_ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's vectorised kernels (reductions, activations, optimizers, pooling)
    "MKL_CBWR": "COMPATIBLE",  # MKL's GEMM and vector maths: one code path on every CPU, Intel or not
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's convolutions; DNNL_ is the older name
    "DNNL_MAX_CPU_ISA": "AVX2",
    "ONEDNN_DEFAULT_FPMATH_MODE": "STRICT",  # never an implicit bf16/tf32 down-conversion
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's BLAS
    "NPY_DISABLE_CPU_FEATURES": NUMPY_ABOVE_AVX2,
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
#: Every variable a mode may set: native mode removes them, so an inherited setting never leaks in.
PINNED = (*PORTABLE_ENVIRONMENT, "MKL_DYNAMIC")


def thread_environment(threads: int) -> dict[str, str]:
    """Every pool at ``threads`` threads; MKL may not pick fewer on its own (``MKL_DYNAMIC``)."""
    return {**dict.fromkeys(THREAD_VARIABLES, str(threads)), "MKL_DYNAMIC": "FALSE"}


def environment(mode: str, threads: int) -> dict[str, str | None]:
    """The variables of ``mode`` (None: removed). Thread counts are pinned in both modes."""
    if mode not in MODES:
        raise ValueError(f"numerics: must be one of {list(MODES)}, got {mode!r}")
    pinned = PORTABLE_ENVIRONMENT if mode == "portable" else dict.fromkeys(PORTABLE_ENVIRONMENT)
    return {**pinned, **thread_environment(threads), MODE_VARIABLE: mode}


def apply(mode: str, threads: int, environ=None) -> None:
    """Set ``mode``'s variables in this process (before torch is imported: raises when it already is and
    the mode differs from the one it was imported under)."""
    environ = os.environ if environ is None else environ
    if environ is os.environ and "torch" in sys.modules and environ.get(MODE_VARIABLE) != mode:
        raise RuntimeError(f"numerics {mode!r} requested after torch was imported under "
                           f"{environ.get(MODE_VARIABLE) or 'no numerics mode'}")
    for name, value in environment(mode, threads).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value


def activate(mode: str, threads: int) -> None:
    """``apply`` and then fix torch's own thread pools (call after torch is imported)."""
    apply(mode, threads)
    import torch

    torch.set_num_threads(threads)
    if mode == "portable" and torch.backends.cpu.get_cpu_capability() not in ("AVX2", "DEFAULT"):
        raise RuntimeError(f"numerics portable: torch runs at {torch.backends.cpu.get_cpu_capability()}, not AVX2 "
                           "(ATEN_CPU_CAPABILITY was set after torch chose its kernels)")


def install_kernels() -> None:
    """In portable mode, route torch's CPU float32 GEMM through oneDNN (``portable_gemm``); call after torch is
    imported, before computing (``build_model`` does)."""
    if current_mode() == "portable":
        from bench_powerprop import portable_gemm

        portable_gemm.install()


def current_mode() -> str | None:
    return os.environ.get(MODE_VARIABLE)


def power(magnitude, exponent: float):
    """``magnitude ** exponent`` for a tensor of magnitudes. In portable mode a square root on the CPU is taken
    correctly rounded (numpy's IEEE ``sqrt``): torch's CPU ``sqrt`` (and ``pow(0.5)``) goes through MKL's vector
    maths, whose last bit differs between CPUs even under ``MKL_CBWR`` (measured: docs/numerics.md)."""
    portable_root = exponent == 0.5 and current_mode() == "portable" and magnitude.device.type == "cpu"
    if portable_root and str(magnitude.dtype) in ("torch.float32", "torch.float64"):
        import numpy as np
        import torch

        return torch.from_numpy(np.sqrt(magnitude.detach().numpy()))
    return magnitude.pow(exponent)


def of_spec(spec: dict) -> tuple[str, int]:
    """The (mode, threads) of a cell's training spec (defaults filled in; torch-free)."""
    from bench_powerprop.training.options import TrainOptions

    train = spec.get("train") if isinstance(spec, dict) else None
    train = train if isinstance(train, dict) else {}
    defaults = {name: default for name, default, _ in TrainOptions.describe()}
    mode, threads = train.get("numerics", defaults["numerics"]), train.get("threads", defaults["threads"])
    # a bad value is the trainer's to name (one line, with its field); until then the defaults apply
    return (mode if mode in MODES else DEFAULT), (threads if isinstance(threads, int) and threads >= 1 else 1)
