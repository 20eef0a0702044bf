"""Training-FLOPs accounting relative to dense training (RigL paper, Appendix H)."""

from __future__ import annotations

from bench_powerprop.lazy import LazyModule

powerprop = LazyModule("bench_powerprop.powerprop")


class FlopsMeter:
    """Training FLOPs relative to dense training, accumulated step by step (RigL paper, App. H).

    Per layer and step: forward ∝ active weights, backward = gradient w.r.t. the layer input
    (∝ forward-active weights) + gradient w.r.t. the weights (∝ weights whose gradient is
    computed: the forward-active ones, all of them on a step that takes the dense gradient, or
    Top-KAST's backward set). A dense step costs 3·n_l. Each term is multiplied by the layer's
    output positions (1 for a linear layer on flat inputs, H_out·W_out for a convolution).
    For RigL this gives (3·f_S·ΔT + 2·f_S + f_D)/(3·f_D·(ΔT + 1)) per update period.
    """

    def __init__(self):
        self.steps = 0
        self.sums: dict[str, int] = {}
        self.positions: dict[str, int] = {}

    def add(self, counts: dict[str, tuple[int, int, int]]) -> None:
        self.steps += 1
        for name, (forward, input_grad, weight_grad) in counts.items():
            self.sums[name] = self.sums.get(name, 0) + forward + input_grad + weight_grad

    def fraction(self, numels: dict[str, int]) -> float:
        if self.steps == 0:
            return 1.0
        dense = sum(3 * numels[name] * self.positions.get(name, 1) for name in numels) * self.steps
        sparse = sum(self.sums.get(name, 0) * self.positions.get(name, 1) for name in numels)
        return sparse / dense

    def watch(self, model) -> None:
        """Record each layer's output positions on the next forward pass (then unhook)."""
        for name, layer in powerprop.weight_layers(model).items():
            if name not in self.positions:
                self._hook_once(name, layer)

    def _hook_once(self, name: str, layer) -> None:
        handles = []

        def hook(module, inputs, output):
            self.positions.setdefault(name, max(1, output[0].numel() // module.weight.shape[0]))
            handles.pop().remove()

        handles.append(layer.register_forward_hook(hook))

    def state_dict(self) -> dict:
        return {"steps": self.steps, "sums": dict(self.sums), "positions": dict(self.positions)}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.sums = state["steps"], dict(state["sums"])
        self.positions.update(state["positions"])
