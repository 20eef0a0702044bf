"""What a cell's numbers were computed on: CPU, the kernels torch/MKL/oneDNN chose, threads, GPU (docs/numerics.md).

``record()`` is the ``hardware`` block of a run's ``run.json`` and the provenance page's hardware rows.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

from bench_powerprop import numerics

_CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(name: str) -> str | None:
    try:
        text = _CPUINFO.read_text()
    except OSError:
        return None
    match = re.search(rf"^{name}\s*:\s*(.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else None


#: x86-64 code of ``void cpuid(uint32 leaf, uint32 subleaf, uint32 out[4])`` (System V ABI; rbx is saved)
_CPUID_CODE = bytes.fromhex("53" "4989d0" "89f8" "89f1" "0fa2" "418900" "41895804" "41894808" "4189500c" "5b" "c3")


def cpuid_strings() -> tuple[str, str] | None:
    """(vendor, brand) as the CPUID instruction reports them: the CPU the libraries dispatch on, also under an
    emulator (qemu-user passes the host's /proc/cpuinfo through). None off x86-64 or where code cannot be mapped."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    import ctypes
    import mmap

    try:
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, ValueError):
        return None
    page.write(_CPUID_CODE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    function = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32))(address)

    def registers(leaf: int) -> list[int]:
        out = (ctypes.c_uint32 * 4)()
        function(leaf, 0, out)
        return list(out)

    def text(values: list[int]) -> str:
        return b"".join(value.to_bytes(4, "little") for value in values).decode("ascii", "replace").strip("\x00 ")

    _, ebx, ecx, edx = registers(0)
    vendor = text([ebx, edx, ecx])
    brand = text([value for leaf in (0x80000002, 0x80000003, 0x80000004) for value in registers(leaf)]) \
        if registers(0x80000000)[0] >= 0x80000004 else ""
    return vendor, brand


def cpu_summary() -> dict:
    """Vendor, model and the capability torch runs its vectorised kernels at (imports torch)."""
    import torch

    vendor, brand = cpuid_strings() or (None, None)
    return {"vendor": vendor or _cpuinfo_field("vendor_id") or platform.processor() or "unknown",
            "model": brand or _cpuinfo_field("model name") or platform.machine(),
            "capability": torch.backends.cpu.get_cpu_capability()}


def _library_versions(config: str) -> dict:
    mkl = re.search(r"Math Kernel Library Version ([0-9.]+)", config)
    onednn = re.search(r"MKL-DNN v([^\s]+)", config)
    return {"mkl": mkl.group(1) if mkl else None, "onednn": onednn.group(1) if onednn else None}


def _gpu() -> dict | None:
    import torch

    if not torch.cuda.is_available():
        return None
    properties = torch.cuda.get_device_properties(0)
    return {"name": properties.name, "count": torch.cuda.device_count(),
            "driver": _nvidia_driver(), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32}


def _nvidia_driver() -> str | None:
    try:
        return Path("/proc/driver/nvidia/version").read_text().split("Kernel Module")[1].split()[0]
    except (OSError, IndexError):
        return None


def record() -> dict:
    """The hardware block of ``run.json`` (imports torch)."""
    import torch

    pinned = {name: os.environ.get(name) for name in (*numerics.PINNED, *numerics.THREAD_VARIABLES)}
    return {**cpu_summary(), "numerics": numerics.current_mode() or "unset", "torch": torch.__version__,
            **_library_versions(torch.__config__.show()), "mkldnn_enabled": torch.backends.mkldnn.enabled,
            "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "environment": {name: value for name, value in pinned.items() if value is not None},
            "gpu": _gpu()}


# -- reading what cells recorded (torch-free) ---------------------------------------------------
def numerics_of(run: dict) -> str:
    """How a cell's kernels were chosen, as one comparable text: ``portable`` is the same on every covered CPU;
    ``native`` names the CPU (and GPU) it ran on; ``unrecorded`` for cells from before hardware was recorded."""
    recorded = run.get("hardware")
    if not recorded:
        return "unrecorded"
    if recorded["numerics"] == "portable":
        return "portable"
    gpu = f", {recorded['gpu']['name']}" if recorded.get("gpu") else ""
    return f"{recorded['numerics']} on {recorded['vendor']} {recorded['model']} ({recorded['capability']}{gpu})"


def _hardware_of(run: dict) -> dict:
    return run.get("hardware") or {}


def _gpu_text(run: dict) -> str:
    gpu = _hardware_of(run).get("gpu")
    if not gpu:
        return "none"
    return (f"{gpu['name']} ×{gpu['count']}, driver {gpu['driver']}, CUDA {gpu['cuda']}, cuDNN {gpu['cudnn']}; "
            f"deterministic algorithms {gpu['deterministic_algorithms']}, cuDNN deterministic {gpu['cudnn_deterministic']}, "
            f"benchmark {gpu['cudnn_benchmark']}, TF32 matmul {gpu['tf32_matmul']}")


#: The provenance page's hardware rows: item → its text for one cell's run.json (the page counts them over cells).
FIELDS = {
    "numerics": numerics_of,
    "CPU": lambda run: f"{_hardware_of(run).get('vendor', '—')} {_hardware_of(run).get('model', '')}".strip(),
    "torch CPU capability in use": lambda run: _hardware_of(run).get("capability", "—"),
    "MKL / oneDNN": lambda run: f"{_hardware_of(run).get('mkl', '—')} / {_hardware_of(run).get('onednn', '—')}",
    "kernel settings": lambda run: " ".join(f"{name}={value}" for name, value in
                                           sorted(_hardware_of(run).get("environment", {}).items())) or "—",
    "torch threads": lambda run: str(_hardware_of(run).get("torch_threads", "—")),
    "GPU": _gpu_text,
}


def mixed_numerics_warning(runs: dict[str, dict]) -> str | None:
    """One line when the cells (``{run dir: run.json}``) were made under different numerics, else None."""
    groups: dict[str, list[str]] = {}
    for run_dir, run in runs.items():
        groups.setdefault(numerics_of(run), []).append(run_dir)
    if len(groups) < 2:
        return None
    parts = [f"{len(dirs)} {name} (e.g. {dirs[0]})" for name, dirs in sorted(groups.items(), key=lambda item: -len(item[1]))]
    return ("warning: these results mix cells made under different numerics, so their bits are not one machine's "
            "or one mode's: " + "; ".join(parts) + " (docs/numerics.md)")
