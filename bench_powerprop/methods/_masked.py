"""Base of the sparse methods: exact per-layer counts, the method's own seeded generator, FLOPs, report."""

from __future__ import annotations

from bench_powerprop.lazy import LazyModule
from bench_powerprop.methods._flops import FlopsMeter
from bench_powerprop.methods.base import Method

torch = LazyModule("torch")
masks = LazyModule("bench_powerprop.masks")
powerprop = LazyModule("bench_powerprop.powerprop")


def mask_seed(seed: int) -> int:
    """Seed of a method's own generator, decorrelated from ``torch.manual_seed(seed)`` used for the init."""
    return (int(seed) * 1_000_003 + 0x5EED) % (2**63 - 1)


class MaskedMethod(Method):
    """Base of the sparse methods: exact counts, FLOPs, report, a resumable seeded generator.

    ``target_counts`` holds the planned final per-layer kept counts (filled in ``setup``).
    """

    sparse = True
    #: the sparse methods honour unstructured masks only unless they declare more
    structures = ("unstructured",)

    def __init__(self, options, cell, seed):
        super().__init__(options, cell, seed)
        self.density = 1.0 - self.sparsity
        self.generator = torch.Generator().manual_seed(mask_seed(seed))
        self.flops = FlopsMeter()
        self.target_counts: dict[str, int] = {}
        self.numels: dict[str, int] = {}
        self._active: dict[str, tuple[int, int, int]] | None = None

    def setup(self, ctx) -> None:
        self.numels = {name: layer.weight.numel() for name, layer in powerprop.weight_layers(ctx.model).items()}
        self.flops.watch(ctx.model)

    def install(self, ctx, mask, which: str = "forward") -> None:
        """Install a mask on the model (``bench_powerprop.masks``) and note that the counts changed."""
        masks.install(ctx.model, mask, which, zero_masked=not self.keeps_dense_phi)
        self._active = None

    # -- FLOPs bookkeeping ---------------------------------------------------------------
    def count_step(self, ctx, dense_weight_grad: bool = False) -> None:
        """Add one training step's FLOPs under the masks the step used (call before changing them)."""
        if self._active is None:
            forward, backward = masks.forward_mask(ctx.model), masks.backward_mask(ctx.model)
            self._active = {}
            for name, numel in self.numels.items():
                active = numel if forward is None or name not in forward else int(forward[name].sum())
                weight_grad = active if backward is None or name not in backward else int(backward[name].sum())
                self._active[name] = (active, active, weight_grad)
        counts = self._active
        if dense_weight_grad:
            counts = {name: (f, i, self.numels[name]) for name, (f, i, _) in counts.items()}
        self.flops.add(counts)

    def training_flops_fraction(self) -> float:
        return self.flops.fraction(self.numels)

    def report(self, ctx) -> dict:
        mask = masks.forward_mask(ctx.model)
        densities = dict.fromkeys(self.numels, 1.0)
        if mask is not None:
            densities.update(mask.layer_density())
        return {**super().report(ctx), "layer_density": densities}

    def state_dict(self) -> dict:
        return {"flops": self.flops.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.flops.load_state_dict(state["flops"])
        self.generator.set_state(state["generator"])
        self._active = None
