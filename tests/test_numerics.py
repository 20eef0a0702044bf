"""Portable numerics (docs/numerics.md): the committed fingerprint, the mode's environment, where it reaches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench_powerprop import fingerprint, hardware, numerics
from bench_powerprop.options import OptionError
from bench_powerprop.training import server
from bench_powerprop.training.optimizers import make_optimizer
from bench_powerprop.training.options import train_options

ROOT = Path(__file__).resolve().parent.parent
FINGERPRINT = ROOT / "tests" / "numerics" / "fingerprint.json"


def test_fingerprint_matches_the_committed_hashes():
    """The default's kernels (MLP, LeNet-5, conv + batch norm + Adam, scores, pruning) give the committed bits in
    portable mode on this machine; a failure names the CPU and the first differing tensor."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("OMP_", "MKL_", "ATEN_"))}
    result = subprocess.run([sys.executable, "-m", "bench_powerprop.fingerprint", "--check", str(FINGERPRINT)],
                            capture_output=True, text=True, cwd=ROOT, env={**environment, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tensors equal" in result.stdout


def test_fingerprint_file_names_the_cpus_it_was_confirmed_on():
    recorded = json.loads(FINGERPRINT.read_text())
    assert recorded["mode"] == "portable" and len(recorded["tensors"]) > 40
    vendors = {cpu["vendor"] for cpu in recorded["confirmed_on"]}
    assert {"GenuineIntel", "AuthenticAMD"} <= vendors
    assert all(cpu["capability"] and cpu["model"] for cpu in recorded["confirmed_on"])


def test_first_difference_names_the_first_changed_tensor():
    expected = {"a": "1", "b": "2", "c": "3"}
    assert fingerprint.first_difference(expected, dict(expected)) is None
    assert fingerprint.first_difference(expected, {"a": "1", "b": "x", "c": "y"}) == "b"
    assert fingerprint.first_difference(expected, {"a": "1", "b": "2"}) == "c"
    assert fingerprint.first_difference(expected, {**expected, "d": "4"}) == "d"


def test_portable_environment_pins_every_library_and_native_removes_it():
    portable = numerics.environment("portable", 3)
    assert portable["ATEN_CPU_CAPABILITY"] == "avx2" and portable["MKL_CBWR"] == "COMPATIBLE"
    assert portable["ONEDNN_MAX_CPU_ISA"] == "AVX2" and portable["OMP_NUM_THREADS"] == portable["MKL_NUM_THREADS"] == "3"
    environ = {"MKL_CBWR": "AUTO", "ATEN_CPU_CAPABILITY": "avx512"}
    numerics.apply("native", 1, environ)
    assert "MKL_CBWR" not in environ and "ATEN_CPU_CAPABILITY" not in environ
    assert environ[numerics.MODE_VARIABLE] == "native" and environ["OMP_NUM_THREADS"] == "1"
    with pytest.raises(ValueError, match="numerics: must be one of"):
        numerics.environment("fast", 1)


def test_a_mode_cannot_be_changed_after_torch_is_imported(monkeypatch):
    monkeypatch.setenv(numerics.MODE_VARIABLE, "native")
    with pytest.raises(RuntimeError, match="after torch was imported"):
        numerics.apply("portable", 1)


def test_train_option_is_checked_and_in_the_spec():
    assert train_options({"steps": 1, "batch_size": 1, "lr": 0.1}).numerics == "portable"
    with pytest.raises(OptionError, match=r"^train\.numerics: must be one of \['portable', 'native'\], got 'fast'$"):
        train_options({"steps": 1, "batch_size": 1, "lr": 0.1, "numerics": "fast"})


def test_portable_square_root_is_ieee_on_the_cpu(monkeypatch):
    """torch's CPU sqrt goes through MKL's vector maths, not correctly rounded (its last bit depends on the CPU);
    portable mode takes the IEEE root, which every CPU computes alike."""
    values = torch.rand(100_000, generator=torch.Generator().manual_seed(0)) + 1e-3
    exact = values.double().numpy() ** 0.5
    monkeypatch.setenv(numerics.MODE_VARIABLE, "portable")
    root = numerics.power(values, 0.5)
    assert root.dtype == torch.float32
    assert np.array_equal(root.numpy(), exact.astype(np.float32))  # double's root rounded once to float: the IEEE one
    monkeypatch.setenv(numerics.MODE_VARIABLE, "native")
    assert torch.equal(numerics.power(values, 0.5), values.pow(0.5))


def test_portable_adam_is_the_fused_kernel():
    """The for-each Adam takes √v through MKL's vector maths; the fused one's √ is IEEE (docs/numerics.md)."""
    model = torch.nn.Linear(2, 2)
    options = {"steps": 1, "batch_size": 1, "lr": 0.1, "optimizer": "adam"}
    assert make_optimizer(model, train_options(options)).defaults["fused"] is True
    assert not make_optimizer(model, train_options({**options, "numerics": "native"})).defaults["fused"]


def test_server_refuses_a_client_of_another_numerics_mode():
    """A worker forked from the server shares torch's import-time kernel choice: a client of the other mode (or
    another thread count) must train in its own process."""
    ours = server.identity(server.server_environment("portable"))
    native = server.identity(server.server_environment("native"))
    reason = server.mismatch(ours, native)
    assert reason and "ATEN_CPU_CAPABILITY" in reason and "MKL_CBWR" in reason
    assert server.mismatch(ours, server.identity(server.server_environment("portable"))) is None


def _run(numerics_mode: str | None, model: str = "AMD EPYC") -> dict:
    if numerics_mode is None:
        return {}
    return {"hardware": {"numerics": numerics_mode, "vendor": "AuthenticAMD", "model": model, "capability": "AVX512",
                         "gpu": None}}


def test_status_warning_when_a_results_folder_mixes_numerics():
    assert hardware.mixed_numerics_warning({"a": _run("portable"), "b": _run("portable")}) is None
    warning = hardware.mixed_numerics_warning({"a": _run("portable"), "b": _run("portable"), "c": _run("native")})
    assert warning.startswith("warning: these results mix cells made under different numerics")
    assert "2 portable (e.g. a)" in warning and "1 native on AuthenticAMD AMD EPYC (AVX512) (e.g. c)" in warning
    # native cells from two machines mix too; cells from before hardware was recorded are named
    assert hardware.mixed_numerics_warning({"a": _run("native"), "b": _run("native", "Intel Xeon")})
    assert "unrecorded" in hardware.mixed_numerics_warning({"a": _run("portable"), "b": _run(None)})


def test_recorded_hardware_names_cpu_kernels_and_threads():
    record = hardware.record()
    assert record["vendor"] and record["model"] and record["capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["mkl"] and record["onednn"] and record["torch_threads"] == torch.get_num_threads()
    assert {"numerics", "environment", "gpu", "torch"} <= set(record)
    texts = {item: field({"hardware": record}) for item, field in hardware.FIELDS.items()}
    assert record["model"] in texts["CPU"] and texts["torch CPU capability in use"] == record["capability"]


def test_native_cells_keep_their_identity_and_portable_cells_get_a_new_one():
    """``native`` is the behaviour from before the option (neutral: left out of the hash, docs/identity.md), so GPU
    configs keep their cells; portable changes the bits, so it changes the hash."""
    from bench_powerprop.identity import cell_hash, spec_identity

    from helpers import digits_spec

    spec = digits_spec()
    native = {**spec, "train": {**spec["train"], "numerics": "native"}}
    portable = {**spec, "train": {**spec["train"], "numerics": "portable"}}
    assert "numerics" not in spec_identity(native)["train"]
    assert spec_identity(portable)["train"]["numerics"] == "portable"
    assert cell_hash(native) != cell_hash(portable) == cell_hash(spec)  # portable is the default


def test_portable_gemm_computes_the_products_and_falls_back_outside_float32():
    """The oneDNN route (docs/numerics.md) computes mm and addmm — transposed operands (the gradients) included —
    and leaves other dtypes and scalings to torch's kernel."""
    from bench_powerprop import portable_gemm

    generator = torch.Generator().manual_seed(0)
    a, b, bias = (torch.randn(shape, generator=generator) for shape in ((7, 5), (5, 3), (3,)))
    for x, y in ((a, b), (a.t().contiguous().t(), b.t().contiguous().t()), (b.t(), a.t())):
        assert torch.allclose(portable_gemm.mm(x, y), (x.double() @ y.double()).float(), atol=1e-5)
    assert torch.allclose(portable_gemm.addmm(bias, a, b), bias + a @ b, atol=1e-5)
    assert torch.allclose(portable_gemm.addmm(bias, a, b, beta=0.5, alpha=2), 0.5 * bias + 2 * (a @ b), atol=1e-5)
    assert portable_gemm.mm(a.double(), b.double()).dtype == torch.float64


_ROUTE_PROBE = """
import torch
from bench_powerprop import numerics, portable_gemm
from bench_powerprop.models import build_model
model = build_model({"name": "mlp", "hidden": [4]}, (3,), 2)
x, weight = torch.rand(5, 3), model[1].weight
onednn = torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")
print(portable_gemm.installed(), torch.equal(x @ weight.t(), onednn))
"""


@pytest.mark.parametrize("mode, expected", [("portable", "True True"), ("native", "False")])
def test_portable_mode_routes_the_gemm_through_onednn(mode, expected):
    """Building a model in a portable process routes its products through oneDNN; a native process keeps MKL."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    numerics.apply(mode, 1, environment)
    result = subprocess.run([sys.executable, "-c", _ROUTE_PROBE], capture_output=True, text=True, cwd=ROOT,
                            env=environment, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[: len(expected.split())] == expected.split()
