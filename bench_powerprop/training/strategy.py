"""Where and how the model runs: one process (``LocalStrategy``) or PyTorch DDP (``DDPStrategy``).

The trainer talks to distribution only through this interface (the way PyTorch Lightning's
strategies or Accelerate do): ``wrap`` the model, draw ``train_batches``, ``begin_step`` /
``after_backward`` / ``end_step`` around each step, ``any`` for decisions every rank must share,
``sync_buffers`` before an evaluation or a checkpoint, ``is_main`` for who writes.

Under DDP (started by torchrun, ``resources.gpu`` > 1):

* each process trains on an equal share of every global batch (``train.batch_size`` is the
  global batch, as in the papers): FFCV loaders shard the data themselves, in-memory tasks are
  sliced by ``ShardedBatches``;
* forward/backward run through ``DistributedDataParallel``, which averages the gradients.
  Methods and checkpoints see the unwrapped module, so names and state dicts are those of a
  1-process run and a checkpoint resumes with any number of processes;
* masks stay identical on every rank: dense gradients captured for RigL's grow step are averaged
  over ranks before the method reads them, and after every step in which a method changed a mask
  all masks are broadcast from rank 0 (a guarantee against ties broken differently);
* the logged loss is the global-batch mean (divergence is seen on every rank at once) and a
  preemption signal seen by any rank stops all of them at the same step;
* only rank 0 writes; buffers (BatchNorm statistics, masks) are broadcast from rank 0 before each
  evaluation and checkpoint, so every rank holds the state that is saved.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from bench_powerprop import distributed, masks
from bench_powerprop.powerprop import captured_dense_gradients


class LocalStrategy:
    """A single process on ``device``."""

    #: φ's gradient may be formed outside autograd (``powerprop.ThetaLeaves``): nothing here listens to it
    forms_phi_gradients_by_hand = True

    def __init__(self, device: torch.device, context: distributed.DistributedContext | None = None):
        self.device = device
        self.context = context or distributed.DistributedContext()

    @property
    def is_main(self) -> bool:
        return self.context.is_main

    @property
    def world_size(self) -> int:
        return self.context.world_size

    def wrap(self, model: nn.Module) -> nn.Module:
        return model

    def train_batches(self, task, batch_size: int, seed: int):
        return task.train_batches(batch_size, seed)

    def begin_step(self, model: nn.Module):
        return None

    def after_backward(self, model: nn.Module) -> None:
        pass

    def end_step(self, model: nn.Module, token, loss: float, batch_accuracy: float) -> tuple[float, float]:
        return loss, batch_accuracy

    def any(self, flag: bool) -> bool:
        return flag

    def sum(self, values: list[float]) -> list[float]:
        return list(values)

    def sync_buffers(self, model: nn.Module) -> None:
        pass


class DDPStrategy(LocalStrategy):
    """One of ``world_size`` processes started by torchrun (see the module docstring)."""

    #: DDP averages gradients in φ's own autograd accumulation hooks: θ must stay inside autograd
    forms_phi_gradients_by_hand = False

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP with ``broadcast_buffers=False``: methods replace mask tensors during training, so
        buffers are synchronised explicitly (``sync_buffers``, ``end_step``) instead."""
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)

    def train_batches(self, task, batch_size: int, seed: int):
        if batch_size % self.world_size:
            raise ValueError(f"train.batch_size: {batch_size} is not divisible by the {self.world_size} processes")
        if getattr(task, "shards_across_ranks", False):
            return task.train_batches(batch_size // self.world_size, seed)
        return distributed.ShardedBatches(task.train_batches(batch_size, seed), self.context)

    def begin_step(self, model: nn.Module):
        """Remember the mask tensors (and their in-place versions) to see whether a hook changed them."""
        return [(mask, _version(mask)) for mask in masks.buffers(model)]

    def after_backward(self, model: nn.Module) -> None:
        """Average the dense ∂L/∂θ captured for RigL over ranks, in place."""
        import torch.distributed as dist

        for grad in captured_dense_gradients(model).values():
            dist.all_reduce(grad)
            grad.div_(self.world_size)

    def end_step(self, model: nn.Module, token, loss: float, batch_accuracy: float) -> tuple[float, float]:
        changed = any(mask is not old or _version(mask) != version for (old, version), mask in zip(token, masks.buffers(model)))
        loss_sum, accuracy_sum, changed_ranks = self.sum([loss, batch_accuracy, float(changed)])
        if changed_ranks > 0:
            self._broadcast(mask for mask in masks.buffers(model) if mask is not None)
        return loss_sum / self.world_size, accuracy_sum / self.world_size

    def any(self, flag: bool) -> bool:
        return self.sum([float(flag)])[0] > 0

    def sum(self, values: list[float]) -> list[float]:
        return distributed.sum_over_ranks(values, self.context, self.device)

    def sync_buffers(self, model: nn.Module) -> None:
        self._broadcast(model.buffers())

    @staticmethod
    def _broadcast(tensors) -> None:
        import torch.distributed as dist

        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def _version(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor._version


@contextlib.contextmanager
def strategy_for(device_name: str):
    """The strategy of this process: DDP when started by torchrun with several processes, else local."""
    with distributed.process_group(device_name) as context:
        device = distributed.resolve_device(device_name, context.local_rank)
        yield (DDPStrategy if context.is_distributed else LocalStrategy)(device, context)
