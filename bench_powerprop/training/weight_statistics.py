"""What a cell's final metrics say about its weights beyond accuracy: pairing fingerprints and near-zero statistics.

``weight_statistics(model, spec, tasks)`` (one call in ``Trainer.final_metrics``) returns

* ``init_fingerprint`` — SHA-256 of the dense initial θ₀ the cell's seed draws (``build_model``
  right after ``torch.manual_seed(seed)``, before ``powerpropify``, lineage and the method's
  ``prepare``): identical across α, methods and variants of the same seed and model. It is
  recomputed here from the seed (the global RNG is forked, training's is untouched);
  ``tests/test_claims.py`` checks that it is the hash of ``build_cell``'s model at α = 1, whose
  weights ``powerpropify`` leaves bit-identical.
* ``batch_fingerprint`` — SHA-256 of the batch size and the example indices of the first
  ``FINGERPRINT_BATCHES`` training batches of the first task (a fresh batch source with the
  trainer's seed); ``None`` for data not held in memory (FFCV loaders), whose pairing is then refused.
  The claims page pairs two cells by seed only when both fingerprints agree.
* ``near_zero_fraction`` — the fraction of effective weights θ with |θ| < ``NEAR_ZERO_FACTOR``·σ₀,
  σ₀ the standard deviation of that layer's initial θ₀ (so the threshold is one tenth of the
  layer's initial spread: ≈ 8% of a normal initialisation lies below it, ≈ 6% of a uniform one);
  ``layer_near_zero_fraction`` per layer, ``near_zero_first_layer`` / ``near_zero_last_layer``
  for the first and the last Linear/Conv layer. Masked weights are exactly zero and count.
* ``small_weight_movement`` — how far the initially small weights moved: the mean of |θ − θ₀| / σ₀ over the
  weights whose |θ₀| lies in the lowest ``SMALL_QUANTILE`` of their layer's, pooled over layers (Powerprop,
  Schwarz et al. 2021 §3: "low-magnitude parameters are largely unaffected by learning"). θ₀ is the same
  for every α of a seed (``powerpropify`` keeps θ), so the movement compares across α.
* ``bimodality`` — Sarle's bimodality coefficient BC = (g² + 1) / (κ + 3(n−1)²/((n−2)(n−3)))
  (g the sample skewness, κ the sample excess kurtosis, both bias-corrected as scipy.stats computes
  them with ``bias=False``; numpy here, as scipy's import would double a training job's start-up) of
  θ/σ₀ pooled over layers: weights heaped at zero give a peaked distribution (high κ, small BC);
  two heaps away from zero give a flat or two-peaked one (BC above 5/9, a uniform's value).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from bench_powerprop.models import build_model
from bench_powerprop.powerprop import effective_weights, weight_layers

NEAR_ZERO_FACTOR = 0.1
#: the initially small weights: the lowest quarter of |θ₀| in each layer
SMALL_QUANTILE = 0.25
FINGERPRINT_BATCHES = 10


def digest(*arrays: np.ndarray) -> str:
    hasher = hashlib.sha256()
    for array in arrays:
        hasher.update(str(array.shape).encode())
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()


def initial_thetas(spec, task) -> dict[str, np.ndarray]:
    """The dense θ₀ of the cell's seed, drawn as ``build_cell`` draws it (before ``powerpropify``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = build_model(spec.model, task.input_shape, task.num_classes)
    return {name: layer.weight.detach().double().numpy() for name, layer in weight_layers(model).items()}


def batch_fingerprint(task, batch_size: int, seed: int) -> str | None:
    if not hasattr(task, "splits"):  # streamed data (FFCV): building a loader only to hash its order costs too much
        return None
    source = task.train_batches(batch_size, seed)
    order = getattr(source, "order", None)
    if order is None:
        return None
    return digest(np.array([batch_size]), order[: FINGERPRINT_BATCHES * batch_size].numpy())


def bimodality_coefficient(values: np.ndarray) -> float:
    n = len(values)
    if n < 4 or np.ptp(values) == 0:
        return float("nan")
    skew, kurtosis = bias_corrected_skew_kurtosis(values)
    return float((skew ** 2 + 1) / (kurtosis + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def bias_corrected_skew_kurtosis(values: np.ndarray) -> tuple[float, float]:
    """Sample skewness G₁ and excess kurtosis G₂, bias-corrected (``scipy.stats.skew/kurtosis(bias=False)``)."""
    n = len(values)
    centred = values - values.mean()
    m2, m3, m4 = (float(np.mean(centred ** power)) for power in (2, 3, 4))
    skew = np.sqrt(n * (n - 1.0)) / (n - 2.0) * m3 / m2 ** 1.5
    kurtosis = ((n + 1.0) * (m4 / m2 ** 2 - 3.0) + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
    return float(skew), float(kurtosis)


def small_weight_movement(thetas: dict[str, np.ndarray], initial: dict[str, np.ndarray], spread: dict[str, float]) -> float:
    """Mean |θ − θ₀| / σ₀ over the weights with |θ₀| at or below their layer's ``SMALL_QUANTILE`` quantile."""
    moved = []
    for name, theta in thetas.items():
        small = np.abs(initial[name]) <= np.quantile(np.abs(initial[name]), SMALL_QUANTILE)
        moved.append(np.abs(theta - initial[name])[small] / spread[name])
    return float(np.concatenate(moved).mean())


def weight_statistics(model: nn.Module, spec, tasks: list) -> dict:
    """``spec``: the cell's ``CellSpec``."""
    from bench_powerprop.training.seeds import cell_batch_seed

    initial = initial_thetas(spec, tasks[0])
    thetas = {name: theta.cpu().double().numpy() for name, theta in effective_weights(model).items()}
    spread = {name: float(initial[name].std()) for name in thetas}
    near = {name: float(np.mean(np.abs(theta) < NEAR_ZERO_FACTOR * spread[name])) for name, theta in thetas.items()}
    counts = np.array([theta.size for theta in thetas.values()])
    names = list(thetas)
    return {
        "init_fingerprint": digest(*initial.values()),
        "batch_fingerprint": batch_fingerprint(tasks[0], spec.train.batch_size, cell_batch_seed(spec, 0)),
        "near_zero_threshold": f"{NEAR_ZERO_FACTOR:g} x initial std of the layer",
        "near_zero_fraction": float(np.dot(counts, [near[name] for name in names]) / counts.sum()),
        "layer_near_zero_fraction": near,
        "near_zero_first_layer": near[names[0]],
        "near_zero_last_layer": near[names[-1]],
        "small_weight_movement": small_weight_movement(thetas, initial, spread),
        "bimodality": bimodality_coefficient(np.concatenate([thetas[name].ravel() / spread[name] for name in names])),
    }
