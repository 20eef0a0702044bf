"""``train.amp``: none (default) | bf16 | fp16 autocast; fp16 (CUDA only) adds a GradScaler."""

from __future__ import annotations

import contextlib

import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecision:
    def __init__(self, mode: str, device: torch.device):
        if mode not in ("none", *AMP_DTYPES):
            raise ValueError(f"train.amp: expected none, bf16 or fp16, got {mode!r}")
        if mode == "fp16" and device.type != "cuda":
            raise ValueError("train.amp: fp16 needs a CUDA device (use bf16 on CPU)")
        self.mode, self.device_type = mode, device.type
        self.scaler = torch.amp.GradScaler("cuda") if mode == "fp16" else None

    def autocast(self):
        if self.mode == "none":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=AMP_DTYPES[self.mode])

    def backward(self, objective: torch.Tensor) -> None:
        (objective if self.scaler is None else self.scaler.scale(objective)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """True gradients before the method hooks read them (no-op without a GradScaler)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def skip_step(self) -> None:
        """A method took no optimizer step this iteration: end the scaler's iteration all the same."""
        if self.scaler is not None:
            self.scaler.update()

    def state_dict(self) -> dict:
        return {"grad_scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and "grad_scaler" in state:
            self.scaler.load_state_dict(state["grad_scaler"])
