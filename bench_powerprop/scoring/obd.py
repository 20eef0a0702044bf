"""``obd``: Optimal Brain Damage saliency s_k = h_kk·θ_k²/2 (LeCun, Denker & Solla, "Optimal Brain Damage",
NIPS 1989, §3 eq. 5–7: the quadratic model of the loss with the off-diagonal terms of the Hessian dropped).

There is no official code (1989). How the Hessian diagonal h_kk is computed: exactly, as the diagonal of the
generalised Gauss–Newton matrix G = Σ_n J_nᵀ H_ℓ(n) J_n — J_n = ∂logits(x_n)/∂θ, one Jacobian per example
(``torch.func.jacrev`` under ``vmap``), H_ℓ(n) = ∂²ℓ/∂logits² of the training loss of that example
(``torch.func.hessian``) — summed over the examples of every scoring batch with the loss's batch-mean
weight 1/|batch| (the objective is Σ_batches loss_fn(batch), as the other data scorers). The full Hessian is
G + Σ_n Σ_c ∂ℓ/∂z_c · ∂²z_c/∂θ², and the diagonal of the second term vanishes wherever the network is linear in
each single weight: Linear/Conv layers followed by ReLU, max-pooling or eval-mode batch norm (every model of
the harness), so there diag(G) *is* the Hessian diagonal (almost everywhere; BackPACK's ``DiagGGNExact``,
f-dangel/backpack ``backpack/extensions/secondorder/diag_ggn/__init__.py``, commit a7acb19, computes the same
quantity by backpropagating matrix square roots). With a smooth activation (tanh, GELU) it is the exact
Gauss–Newton diagonal, the paper's own approximation (eq. 7 drops the f'' term, the "Levenberg–Marquardt
approximation").

θ is the effective weight (Powerprop's θ = φ|φ|^(α−1)) under any installed mask and the derivatives are with
respect to θ, so the score is the same function of the network for every α. Deviations: OBD computes h_kk by a
backward pass that also drops the off-diagonal terms while propagating second derivatives (eq. 7); here the
Gauss–Newton diagonal is exact. The paper prunes a trained network, retrains and repeats; as a scorer this is
one scoring (``pai`` scores the initial network, ``oneshot`` the trained one). Cost: one Jacobian per example
(classes × weights numbers), taken ``chunk_size`` examples at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import Options, integer, option
from bench_powerprop.scoring.base import SCORERS, Scorer

torch = LazyModule("torch")
saliency = LazyModule("bench_powerprop.scoring._saliency")


@dataclass(frozen=True)
class ObdOptions(Options):
    chunk_size: int = option(32, "examples whose Jacobians are held in memory at once (no effect on the result)",
                             check=integer(minimum=1))


def hessian_diagonal(model, thetas, batches, loss_fn, chunk_size: int = 32) -> dict:
    """diag Σ_b loss_fn(batch_b) w.r.t. ``thetas``, as the exact Gauss–Newton diagonal (see the module docstring)."""
    from torch.func import hessian, jacrev, vmap

    names = list(thetas)
    variables = {name: theta.detach() for name, theta in thetas.items()}

    def logits_of(weights, x):
        with saliency.computing_with(model, weights):
            return model(x.unsqueeze(0)).squeeze(0)

    def example_loss(logits, label):
        return loss_fn(logits.unsqueeze(0), label.unsqueeze(0))

    jacobians, loss_hessians = vmap(jacrev(logits_of), in_dims=(None, 0)), vmap(hessian(example_loss))
    total = {name: torch.zeros_like(theta) for name, theta in variables.items()}
    with saliency.evaluation_mode(model):
        for features, labels in batches:
            for start in range(0, len(features), chunk_size):
                x, y = features[start:start + chunk_size], labels[start:start + chunk_size]
                with saliency.computing_with(model, variables), torch.no_grad():
                    curvature = loss_hessians(model(x), y)  # (examples, classes, classes)
                jacobian = jacobians(variables, x)  # name -> (examples, classes, *weight shape)
                for name in names:
                    flat = jacobian[name].reshape(len(x), curvature.shape[1], -1)
                    total[name] += torch.einsum("nci,ncd,ndi->i", flat, curvature, flat).view_as(total[name]) / len(features)
    return total


@SCORERS.register("obd", options=ObdOptions)
class OptimalBrainDamage(Scorer):
    needs_data = True

    def score(self, model, inputs=None):
        thetas = saliency.masked_thetas(model, inputs.mask)
        diagonal = hessian_diagonal(model, thetas, inputs.batches, inputs.loss_fn, self.options.chunk_size)
        return {name: diagonal[name] * theta**2 / 2 for name, theta in thetas.items()}
