"""``obd``: Optimal Brain Damage saliency s_k = h_kk·θ_k²/2 (LeCun, Denker & Solla, "Optimal Brain Damage",
NIPS 1989: the saliency of section "Optimal brain damage", a quadratic model of the loss with the off-diagonal terms of
the Hessian dropped, and section "Computing the second derivatives").

There is no official code (1989). How the Hessian diagonal h_kk is computed: exactly, as the diagonal of the
generalised Gauss–Newton matrix G = Σ_n J_nᵀ H_ℓ(n) J_n — J_n = ∂logits(x_n)/∂θ, one Jacobian per example
(one backward pass per class), H_ℓ(n) = ∂²ℓ/∂logits² of the training loss of that example
(``torch.autograd.functional.hessian``, classes × classes) — summed over the examples of every scoring batch with the loss's batch-mean
weight 1/|batch| (the objective is Σ_batches loss_fn(batch), as the other data scorers). The full Hessian is
G + Σ_n Σ_c ∂ℓ/∂z_c · ∂²z_c/∂θ², and the diagonal of the second term vanishes wherever the network is linear in
each single weight: Linear/Conv layers followed by ReLU, max-pooling or eval-mode batch norm (every model of
the harness), so there diag(G) *is* the Hessian diagonal (almost everywhere; BackPACK's ``DiagGGNExact``,
f-dangel/backpack ``backpack/extensions/secondorder/diag_ggn/__init__.py``, commit a7acb19, computes the same
quantity by backpropagating matrix square roots). With a smooth activation (tanh, GELU) it is the exact
Gauss–Newton diagonal, the paper's own approximation (it drops the f'' term: the "Levenberg–Marquardt
approximation").

θ is the effective weight (Powerprop's θ = φ|φ|^(α−1)) under any installed mask and the derivatives are with
respect to θ, so the score is the same function of the network for every α. Deviations: OBD computes h_kk by a
backward pass that also drops the off-diagonal terms while propagating second derivatives; here the
Gauss–Newton diagonal is exact. The paper prunes a trained network, retrains and repeats; as a scorer this is
one scoring (``pai`` scores the initial network). Cost: one forward and (classes) backward passes per scoring
example.
"""

from __future__ import annotations

from bench_powerprop.lazy import LazyModule
from bench_powerprop.scoring.base import SCORERS, Scorer

torch = LazyModule("torch")
saliency = LazyModule("bench_powerprop.scoring._saliency")


def hessian_diagonal(model, thetas, batches, loss_fn) -> dict:
    """diag of the Hessian of Σ_b loss_fn(batch_b) w.r.t. ``thetas``, as the exact Gauss–Newton diagonal (module docstring)."""
    variables = saliency.leaves(thetas)
    names = list(variables)
    total = {name: torch.zeros_like(theta) for name, theta in variables.items()}
    with saliency.scoring_mode(model, "eval"), saliency.computing_with(model, variables):
        for features, labels in batches:
            for x, y in zip(features, labels):
                logits = model(x.unsqueeze(0)).squeeze(0)
                curvature = torch.autograd.functional.hessian(lambda z, y=y: loss_fn(z.unsqueeze(0), y.unsqueeze(0)), logits.detach())
                rows = [torch.autograd.grad(logit, list(variables.values()), retain_graph=True) for logit in logits]
                for index, name in enumerate(names):
                    jacobian = torch.stack([row[index].reshape(-1) for row in rows])  # (classes, weights of the layer)
                    total[name] += ((curvature @ jacobian) * jacobian).sum(0).view_as(total[name]) / len(features)
    return total


@SCORERS.register("obd")
class OptimalBrainDamage(Scorer):
    needs_data = True
    reference_rounding = None  # no reference code to reproduce: ``count: reference`` is refused

    def score(self, model, inputs=None):
        thetas = saliency.masked_thetas(model, inputs.mask)
        diagonal = hessian_diagonal(model, thetas, inputs.batches, inputs.loss_fn)
        return {name: diagonal[name] * theta**2 / 2 for name, theta in thetas.items()}
