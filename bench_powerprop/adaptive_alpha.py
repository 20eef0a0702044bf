"""The adaptive-α controller of the Powerprop reproduction report ("Adaptive Tuning of α"), after TCP congestion control.

Like TCP's slow start and congestion avoidance: while the measured sparsity keeps growing, α − 1
grows geometrically (×cr) in an initial phase and linearly (+cd) after it; when sparsity falls, α − 1
shrinks geometrically (÷cr) and the initial phase is over for good. Per call, with s the sparsity
measured under the current α (the fraction of effective weights with |θ| < ε)::

    first call, or s >= the previous call's s:
        α ← 1 + cr·(α − 1)    while still in the initial phase
        α ← α + cd            after it
    otherwise:
        α ← 1 + (α − 1)/cr;   the initial phase ends

α must start above 1: at α = 1 the geometric steps never move it. Torch-free; the method that
calls it every K epochs and re-parameterises the model is ``methods/adaptive_alpha.py``.
"""

from __future__ import annotations


class AlphaController:
    def __init__(self, alpha: float, cr: float = 1.5, cd: float = 0.1):
        if not alpha > 1:
            raise ValueError(f"adaptive α must start above 1 (at α = 1 the geometric phase never moves), got {alpha!r}")
        if not cr > 1:
            raise ValueError(f"cr must be > 1, got {cr!r}")
        if not cd >= 0:
            raise ValueError(f"cd must be >= 0, got {cd!r}")
        self.alpha, self.cr, self.cd = float(alpha), float(cr), float(cd)
        self.previous_sparsity: float | None = None
        self.initial_phase = True

    def update(self, sparsity: float) -> float:
        """The new α after measuring ``sparsity`` under the current α."""
        if self.previous_sparsity is None or sparsity >= self.previous_sparsity:
            self.alpha = 1 + self.cr * (self.alpha - 1) if self.initial_phase else self.alpha + self.cd
        else:
            self.alpha = 1 + (self.alpha - 1) / self.cr
            self.initial_phase = False
        self.previous_sparsity = float(sparsity)
        return self.alpha

    def state_dict(self) -> dict:
        return {"alpha": self.alpha, "previous_sparsity": self.previous_sparsity, "initial_phase": self.initial_phase}

    def load_state_dict(self, state: dict) -> None:
        self.alpha, self.previous_sparsity, self.initial_phase = state["alpha"], state["previous_sparsity"], state["initial_phase"]
