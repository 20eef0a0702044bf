"""What a pruned network costs to store and run, measured on its real sparse forms beside the dense one.

During training and one-shot evaluation sparsity is *simulated*: the masked weights are zeros inside
dense tensors and every product is a dense one. Deployment turns a trained cell's model into a plain
network of the same architecture with θ as its weights (``plain_model``; ``export`` writes it) and then
into forms whose cost does shrink with the mask:

* ``csr``: every Linear weight as a ``torch.sparse_csr`` tensor, the activations kept transposed through
  the network so each layer is one ``torch.sparse.mm(W, Hᵀ)`` (values, int64 column indices, row pointers);
* ``channel``: every hidden unit whose row of weights is all zero removed with the next layer's column
  for it; its constant output act(b) is folded into the next layer's bias (exact up to rounding), leaving
  smaller dense layers;
* ``semi_structured``: 2:4 masks in ``torch.sparse.to_sparse_semi_structured``, only on a CUDA GPU of
  compute capability ≥ 8.0 (none on a CPU-only machine: the table says so).

Sizes are measured (the bytes ``torch.save`` writes for each form's tensors); latencies are measured in
one process, one thread, each form against the dense model at the same batch sizes (minimum and median
over repeats). Deployment handles the MLP models (Flatten, Linear, ReLU); FLOPs are the theoretical
2·(kept weights) multiply-adds per example.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from bench_powerprop.data.tasks import build_task
from bench_powerprop.models import build_model
from bench_powerprop.pipelines import DEPLOY_FIGURE, DEPLOY_MARKDOWN, DEPLOY_TABLE
from bench_powerprop.powerprop import effective_weights

BATCH_SIZES = (1, 64, 1024)
#: repeats of the workflow's deploy step (kept cheap: it runs in every `make run`); bench/bench_deploy.py takes 21
REPEATS = 3
#: the shortest a timed repeat may be: faster calls are looped
MIN_REPEAT_SECONDS = 0.001
#: the α deployed by the workflow's step (α = 1 against the notebook's α = 2): a few seconds per experiment
DEPLOYED_ALPHAS = (1.0, 2.0)
SIMULATED = "dense (simulated sparsity)"
FORMS = ("dense", "csr", "channel", "semi_structured")


# -- a trained model as a plain network --------------------------------------------------------
@functools.cache
def _task_shape(data_json: str) -> tuple[tuple[int, ...], int]:
    task = build_task(json.loads(data_json))
    return tuple(task.input_shape), task.num_classes


def plain_model(model: nn.Module, spec: dict) -> nn.Module:
    """A plain (non-Powerprop) model of the cell's architecture whose weights are θ with the masks applied."""
    input_shape, num_classes = _task_shape(json.dumps(spec["data"], sort_keys=True))
    plain = build_model(spec["model"], input_shape, num_classes)
    state = plain.state_dict()
    trained = model.state_dict()
    state.update({key: trained[key] for key in state if key in trained})
    state.update(effective_weights(model))
    plain.load_state_dict(state)
    return plain.eval()


def mlp_layers(model: nn.Module) -> list[nn.Linear]:
    """The Linear layers of a Flatten-Linear-ReLU network, in order; ``ValueError`` for any other model."""
    modules = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    allowed = (nn.Flatten, nn.Linear, nn.ReLU)
    if not modules or not all(type(module) in allowed for module in modules):
        raise ValueError(f"deployment handles MLPs (Flatten, Linear, ReLU) only, got {type(model).__name__}")
    return [module for module in modules if isinstance(module, nn.Linear)]


# -- the sparse forms ------------------------------------------------------------------------------
class CsrMLP(nn.Module):
    """The MLP with CSR weights; activations flow transposed so each layer is one ``torch.sparse.mm``."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the kernels measured are what ships
            warnings.simplefilter("ignore", UserWarning)
            self.weights = [layer.weight.detach().to_sparse_csr() for layer in layers]
        self.biases = [layer.bias.detach().unsqueeze(1) for layer in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = x.flatten(1).t()
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            hidden = torch.sparse.mm(weight, hidden) + bias
            if i < len(self.weights) - 1:
                hidden = torch.relu(hidden)
        return hidden.t()

    def tensors(self) -> dict[str, torch.Tensor]:
        parts = {}
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            parts |= {f"{i}.crow": weight.crow_indices(), f"{i}.col": weight.col_indices(), f"{i}.values": weight.values(),
                      f"{i}.bias": bias}
        return parts


def channel_pruned(layers: list[nn.Linear]) -> nn.Sequential:
    """Smaller dense layers: hidden units with an all-zero weight row removed, their act(b) folded forward."""
    weights = [layer.weight.detach().clone() for layer in layers]
    biases = [layer.bias.detach().clone() for layer in layers]
    for i in range(len(weights) - 1):
        alive = weights[i].ne(0).any(dim=1)
        constant = torch.relu(biases[i][~alive])
        biases[i + 1] = biases[i + 1] + weights[i + 1][:, ~alive] @ constant
        weights[i], biases[i] = weights[i][alive], biases[i][alive]
        weights[i + 1] = weights[i + 1][:, alive]
    modules: list[nn.Module] = [nn.Flatten()]
    for i, (weight, bias) in enumerate(zip(weights, biases)):
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        linear.weight.data, linear.bias.data = weight.contiguous(), bias
        modules += [linear] + ([nn.ReLU()] if i < len(weights) - 1 else [])
    return nn.Sequential(*modules).eval()


def semi_structured_support() -> str | None:
    """Why the 2:4 semi-structured format cannot run here, or None where it can."""
    if not torch.cuda.is_available():
        return "no CUDA GPU on this machine (to_sparse_semi_structured needs one of compute capability >= 8.0)"
    if torch.cuda.get_device_capability() < (8, 0):
        return f"GPU {torch.cuda.get_device_name()} has compute capability < 8.0"
    return None


def stored_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """The bytes ``torch.save`` writes for these tensors (what a file of this form takes)."""
    buffer = io.BytesIO()
    torch.save({name: tensor.contiguous() for name, tensor in tensors.items()}, buffer)
    return buffer.getbuffer().nbytes


def dense_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return dict(model.state_dict())


def forms(plain: nn.Module) -> dict[str, tuple[Callable, int, int]]:
    """``{form: (forward, stored bytes, multiply-adds per example)}`` of a plain MLP's deployable forms."""
    layers = mlp_layers(plain)
    csr = CsrMLP(layers)
    shrunk = channel_pruned(layers)
    dense_macs = sum(layer.weight.numel() for layer in layers)
    nonzero = sum(int(layer.weight.count_nonzero()) for layer in layers)
    result = {
        "dense": (plain, stored_bytes(dense_tensors(plain)), dense_macs),
        "csr": (csr, stored_bytes(csr.tensors()), nonzero),
    }
    shrunk_macs = sum(layer.weight.numel() for layer in mlp_layers(shrunk))
    if shrunk_macs < dense_macs:
        result["channel"] = (shrunk, stored_bytes(dense_tensors(shrunk)), shrunk_macs)
    return result


# -- timing ------------------------------------------------------------------------------------
def latencies(forwards: dict[str, Callable], inputs: torch.Tensor, repeats: int = REPEATS) -> dict[str, tuple[float, float]]:
    """``{form: (minimum, median) seconds per call}``; the forms take turns within every repeat (each looped to
    ≥ ``MIN_REPEAT_SECONDS``), so a load that comes and goes on a shared machine hits them alike."""
    with torch.inference_mode():
        numbers = {}
        for form, forward in forwards.items():
            forward(inputs)
            start = time.perf_counter()
            forward(inputs)
            numbers[form] = max(1, int(MIN_REPEAT_SECONDS / max(time.perf_counter() - start, 1e-9)))
        times: dict[str, list[float]] = {form: [] for form in forwards}
        for _ in range(repeats):
            for form, forward in forwards.items():
                start = time.perf_counter()
                for _ in range(numbers[form]):
                    forward(inputs)
                times[form].append((time.perf_counter() - start) / numbers[form])
    return {form: (min(values), statistics.median(values)) for form, values in times.items()}


def measure(plain: nn.Module, input_features: int, batch_sizes=BATCH_SIZES, repeats: int = REPEATS) -> list[dict]:
    """One row per (form, batch size): stored bytes, multiply-adds, measured latency and its ratio to the dense
    model's (timed in turn with it: > 1 is faster than dense), by minimum and by median."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        available = forms(plain)
        rows = []
        for batch in batch_sizes:
            inputs = torch.randn(batch, input_features, generator=generator)
            timed = latencies({form: forward for form, (forward, _, _) in available.items()}, inputs, repeats)
            dense_min, dense_median = timed["dense"]
            for form, (_, size, macs) in available.items():
                fastest, median = timed[form]
                rows.append({"form": SIMULATED if form == "dense" else form, "batch_size": batch, "stored_bytes": size,
                             "macs_per_example": macs, "flops": 2 * macs * batch, "min_ms": 1e3 * fastest,
                             "median_ms": 1e3 * median, "dense_median_ms": 1e3 * dense_median,
                             "speedup_vs_dense": dense_median / median, "speedup_vs_dense_min": dense_min / fastest})
        return rows
    finally:
        torch.set_num_threads(threads)


# -- an experiment's trained cells ------------------------------------------------------------------
#: the one-shot levels deployed (the nearest swept keep level to each): 90 % and 98 % sparsity
ONESHOT_KEEPS = (0.1, 0.02)
DEPLOY_COLUMNS = ["method", "variant", "alpha", "seed", "structure", "sparsity", "test_accuracy", "form", "batch_size",
                  "stored_bytes", "macs_per_example", "flops", "min_ms", "median_ms", "dense_median_ms", "speedup_vs_dense",
                  "speedup_vs_dense_min"]
#: the measured columns: they differ from run to run (everything else is a function of the cell)
TIMING_COLUMNS = ("min_ms", "median_ms", "dense_median_ms", "speedup_vs_dense", "speedup_vs_dense_min")


def _oneshot_models(cell: dict, prune_cfg: dict):
    """(structure label, sparsity, test accuracy, plain pruned model) of a one-shot cell at the deployed levels."""
    from pathlib import Path

    from bench_powerprop import masks
    from bench_powerprop.config.prune import prune_options
    from bench_powerprop.reporting.rows import read_sweep
    from bench_powerprop.scoring import score
    from bench_powerprop.training.checkpointing import load_trained_model

    model, spec = load_trained_model(Path(cell["run_dir"]) / "model.pt")
    sweep = read_sweep(cell["run_dir"])
    sweep = sweep.assign(structure=sweep.get("structure", "unstructured"))
    prune = prune_options(prune_cfg)
    scores = score(prune.scorer, model)
    by_label = {structure.label(): structure for structure in prune.parsed_structures}
    trained = plain_model(model, spec)
    for label, rows in sweep.groupby("structure", sort=False):
        wanted = ONESHOT_KEEPS if label == "unstructured" else ONESHOT_KEEPS[:1]
        chosen = {int((rows["keep"] - keep).abs().idxmin()) for keep in wanted}
        for index in sorted(chosen):
            row = sweep.loc[index]
            pruned = copy.deepcopy(trained)
            mask = masks.prune(scores, float(row["keep"]), prune.scope, prune.last_layer_keep_factor, structure=by_label[label])
            with torch.no_grad():
                for name, layer in masks.weight_layers(pruned).items():
                    layer.weight.mul_(mask[name])
            yield label, float(row["actual_sparsity"]), float(row["test_accuracy"]), pruned, spec


def _trained_models(cell: dict):
    from pathlib import Path

    from bench_powerprop.io import read_json
    from bench_powerprop.training.checkpointing import load_trained_model

    model, spec = load_trained_model(Path(cell["run_dir"]) / "model.pt")
    metrics = read_json(Path(cell["run_dir"]) / "metrics.json")
    from bench_powerprop.structure import parse_structure

    label = parse_structure(spec.get("structure")).label()
    yield label, float(metrics["actual_sparsity"]), float(metrics["test_accuracy"]), plain_model(model, spec), spec


def deploy_experiment(manifest: dict, repeats: int = REPEATS) -> list[dict]:
    """Rows of every deployed model of the experiment: the lowest seed of each trained configuration with an α of
    ``DEPLOYED_ALPHAS`` (the sparse cells of sparse training; the one-shot cells pruned at the ``ONESHOT_KEEPS``
    levels and each structure's level nearest 90 %)."""
    from bench_powerprop.pipelines import first_seed_cells

    rows = []
    for cell in first_seed_cells(manifest["cells"]):
        if cell["alpha"] not in DEPLOYED_ALPHAS:
            continue
        if manifest["kind"] == "oneshot":
            models = _oneshot_models(cell, manifest["prune"])
        elif cell["sparsity"] > 0:
            models = _trained_models(cell)
        else:
            continue
        for label, sparsity, accuracy, plain, _ in models:
            features = mlp_layers(plain)[0].in_features
            for measured in measure(plain, features, repeats=repeats):
                rows.append({"method": cell["method"], "variant": cell["variant"], "alpha": cell["alpha"], "seed": cell["seed"],
                             "structure": label, "sparsity": sparsity, "test_accuracy": accuracy, **measured})
    return rows


# -- the experiment's table and figure ----------------------------------------------------------------
#: the batch size the figure plots latency at
FIGURE_BATCH = 64


def deployed_form(structure: str) -> str:
    """The real form a model of this structure is deployed in: smaller dense layers for channel, else CSR."""
    return "channel" if structure == "channel" else "csr"


def deploy_markdown(table, experiment: str) -> str:
    import pandas as pd

    if table.empty:
        return f"# {experiment}: deployment\n\nNo sparse cells to deploy.\n"
    keys = ["method", "variant", "alpha", "structure", "sparsity", "test_accuracy", "form", "stored_bytes", "macs_per_example"]
    ratios = table.assign(ratio=[f"{median:.2f} / {fastest:.2f}" for median, fastest
                                 in zip(table["speedup_vs_dense"], table["speedup_vs_dense_min"])])
    wide = ratios.pivot_table(index=keys, columns="batch_size", values="ratio", aggfunc="first")
    wide.columns = [f"× dense, batch {batch} (median / min)" for batch in wide.columns]
    wide = wide.reset_index().sort_values(["method", "alpha", "structure", "sparsity", "form"])
    wide["test_accuracy"] = (100 * wide["test_accuracy"]).map("{:.1f}".format)
    wide["stored_bytes"] = (wide["stored_bytes"] / 1024).map("{:.0f} KiB".format)
    wide = wide.rename(columns={"test_accuracy": "test acc. %", "stored_bytes": "stored", "macs_per_example": "MACs/example"})
    at = table[table["batch_size"] == FIGURE_BATCH].groupby("form")[["min_ms", "median_ms"]].median()
    semi = semi_structured_support()
    lines = [
        f"# {experiment}: what the pruned networks cost, measured",
        "",
        f"Each trained configuration's lowest seed, deployed (bench_powerprop/deploy.py): `{SIMULATED}` is the masked "
        "dense model as trained and evaluated (zeros stored and multiplied); `csr` runs torch.sparse CSR matmuls; "
        "`channel` runs smaller dense layers with the all-zero units removed. Ratios are the dense model's latency "
        f"over the form's (> 1: faster than dense, < 1: the sparse form loses), by median and by minimum of {REPEATS} "
        "repeats in which the forms take turns, one thread, one process; "
        "stored size is what torch.save writes. 2:4 semi-structured format: "
        + ("measured" if semi is None else f"not measured ({semi})") + ". Timings vary with the machine and its load; "
        "they are measurements of this run, not asserted anywhere.",
        "",
        wide.to_markdown(index=False, floatfmt=".2f"),
        "",
        f"Median over models of the per-call latency at batch {FIGURE_BATCH} (ms, min / median of repeats):",
        "",
        pd.DataFrame(at).to_markdown(floatfmt=".3f"),
        "",
    ]
    return "\n".join(lines)


def deploy_figure(table, experiment: str):
    """Test accuracy against measured latency (batch ``FIGURE_BATCH``) and stored size: one line per method, α, structure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench_powerprop.reporting.figures import configuration_styles, plain_log_ticks, shared_legend

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    at = table[table["batch_size"] == FIGURE_BATCH]
    groups = list(at.groupby(["method", "alpha", "structure"]))
    # α in its colour of every other figure when only α differs (configuration_styles' keys: method, variant, _, α)
    styles = configuration_styles([(method, structure, "", alpha) for (method, alpha, structure), _ in groups])
    for (method, alpha, structure), group in groups:
        line = group[group["form"] == deployed_form(structure)].sort_values("sparsity")
        label = f"{method} α={alpha:g} {structure} ({deployed_form(structure)})"
        style = styles[(method, structure, "", alpha)]
        for axis, x in ((axes[0], line["median_ms"]), (axes[1], line["stored_bytes"] / 1024)):
            axis.plot(x, 100 * line["test_accuracy"], color=style["colour"], linestyle=style["linestyle"],
                      marker=style["marker"], label=label)
    dense = at[at["form"] == SIMULATED]
    if not dense.empty:
        axes[0].axvline(dense["median_ms"].iloc[0], color="grey", linestyle="--", label=SIMULATED)
        axes[1].axvline(dense["stored_bytes"].iloc[0] / 1024, color="grey", linestyle="--", label=SIMULATED)
    axes[0].set(xscale="log", xlabel=f"measured latency per call at batch {FIGURE_BATCH} (ms, median)", ylabel="test accuracy (%)")
    axes[1].set(xscale="log", xlabel="stored size (KiB)")
    for axis in axes:
        plain_log_ticks(axis.xaxis)  # 0.05, 0.1 rather than 5×10⁻²
        axis.grid(True, which="both", alpha=0.3)
    shared_legend(figure, axes, fontsize=8)
    figure.suptitle(f"{experiment}: accuracy against the measured cost of the deployed sparse network")
    return figure


def write_deploy(manifest: dict, out_dir, repeats: int = REPEATS) -> str:
    from pathlib import Path

    import pandas as pd

    from bench_powerprop.io import write_csv_atomic, write_text_atomic

    table = pd.DataFrame(deploy_experiment(manifest, repeats), columns=DEPLOY_COLUMNS)
    markdown = deploy_markdown(table, manifest["experiment"])
    write_csv_atomic(Path(out_dir) / DEPLOY_TABLE, table)
    write_text_atomic(Path(out_dir) / DEPLOY_MARKDOWN, markdown)
    figure_path = Path(out_dir) / DEPLOY_FIGURE
    figure_path.parent.mkdir(parents=True, exist_ok=True)
    figure = deploy_figure(table, manifest["experiment"])
    figure.savefig(figure_path, dpi=110)
    return markdown


# -- export ------------------------------------------------------------------------------------------
def export(cell_dir, out, compress: bool = False) -> dict:
    """Write a trained cell's model as a plain ``nn.Module`` state_dict (θ with masks applied; CSR weights with
    ``compress``) beside the spec that rebuilds its architecture: ``{"spec", "state_dict", "format"}``."""
    from pathlib import Path

    from bench_powerprop.io import write_bytes_atomic
    from bench_powerprop.training.checkpointing import load_trained_model

    model, spec = load_trained_model(Path(cell_dir) / "model.pt")
    state = plain_model(model, spec).state_dict()
    if compress:
        state = {name: tensor.to_sparse_csr() if name.endswith("weight") and tensor.dim() == 2 else tensor
                 for name, tensor in state.items()}
    payload = {"format": "bench_powerprop plain state_dict" + (" (CSR weights)" if compress else ""),
               "spec": spec, "state_dict": state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(Path(out), buffer.getvalue())
    return payload


def load_exported(path) -> nn.Module:
    """The plain model an ``export`` file holds (CSR weights made dense again)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    spec = payload["spec"]
    task = build_task(spec["data"])
    plain = build_model(spec["model"], task.input_shape, task.num_classes)
    plain.load_state_dict({name: tensor.to_dense() if tensor.layout == torch.sparse_csr else tensor
                           for name, tensor in payload["state_dict"].items()})
    return plain.eval()
