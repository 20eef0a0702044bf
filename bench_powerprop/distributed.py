"""Multi-process training (PyTorch DDP) under ``torchrun``, and the training device.

The ``train`` rule starts ``python -m torch.distributed.run --standalone --nproc_per_node=N
-m bench_powerprop train ...`` when the experiment's ``resources.gpu`` is N > 1. Each process
then finds RANK, WORLD_SIZE and LOCAL_RANK in its environment and:

* joins the process group (nccl on CUDA, gloo on CPU) and uses the device ``cuda:LOCAL_RANK``;
* trains on an equal share of every global batch (``train.batch_size`` is the global batch,
  as in the papers): FFCV loaders shard the data themselves, in-memory tasks are sliced here;
* runs forward/backward through ``DistributedDataParallel``, which averages the gradients.
  Methods and checkpoints see the unwrapped module, so names and state dicts are those of a
  1-process run and a checkpoint resumes with any number of processes;
* keeps masks identical on every rank: dense gradients captured for RigL's grow step are
  averaged over ranks before the method uses them (the grow criterion is then the
  global-batch gradient, as in a 1-process run), and after every step in which a method
  hook replaced or changed a ``weight_mask``/``weight_grad_mask`` all masks are broadcast
  from rank 0 (a guarantee against ties broken differently on different ranks);
* agrees with the other ranks on everything that ends the loop: the logged loss is the
  global-batch mean (so divergence is detected on every rank at once) and a preemption
  signal seen by any rank stops all of them at the same step;
* lets only rank 0 write outputs and checkpoints; buffers (BatchNorm statistics, masks)
  are broadcast from rank 0 before each evaluation and checkpoint, so every rank holds
  the state that is saved, and all ranks resume from the same checkpoint.

torch is imported at module level (this module is only used by training), torch.distributed
only inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
from torch import nn

from bench_powerprop.powerprop import MASK_BUFFERS, weight_layers

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
DEVICE_CHOICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank, the number of processes, its GPU index on the node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# -- process group and device -----------------------------------------------------------
def launched_by_torchrun(environ=None) -> bool:
    environ = os.environ if environ is None else environ
    return all(name in environ for name in TORCHRUN_VARIABLES) and int(environ["WORLD_SIZE"]) > 1


def current_context() -> DistributedContext:
    """This process's context: from the initialised process group, else a single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistributedContext()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``train.device``: cpu, cuda (this process's GPU, cuda:LOCAL_RANK) or auto (cuda when available)."""
    if name not in DEVICE_CHOICES:
        raise ValueError(f"train.device: expected one of {DEVICE_CHOICES}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device: 'cuda' requested but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


@contextlib.contextmanager
def process_group(device_name: str):
    """Join the process group when started by torchrun (nccl on CUDA, gloo on CPU); leave it after.

    Without torchrun's environment (or with WORLD_SIZE 1) this does nothing and yields a
    single-process context.
    """
    if not launched_by_torchrun():
        yield DistributedContext()
        return
    import torch.distributed as dist

    device = resolve_device(device_name, int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield current_context()
    finally:
        dist.destroy_process_group()


def wrap_model(model: nn.Module, ctx: DistributedContext, device: torch.device) -> nn.Module:
    """The module to run forward/backward through: DDP when distributed, else ``model`` itself.

    ``broadcast_buffers=False``: DDP would broadcast the buffers it listed at construction on
    every forward, but methods replace mask tensors during training; buffers are instead
    synchronised explicitly (``broadcast_buffers``, ``synchronise_step``).
    """
    if not ctx.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)


# -- batches ----------------------------------------------------------------------------
class ShardedBatches:
    """This rank's equal slice of every global batch of ``source`` (seeded alike on every rank).

    For in-memory tasks: the union of the ranks' slices is exactly the batch a 1-process
    run draws, so N processes train on the same data as one.
    """

    def __init__(self, source, ctx: DistributedContext):
        self.source, self.ctx = source, ctx

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        features, labels = self.source.next_batch()
        per_rank = len(labels) // self.ctx.world_size
        start = self.ctx.rank * per_rank
        return features[start: start + per_rank], labels[start: start + per_rank]

    def state_dict(self) -> dict:
        return self.source.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.source.load_state_dict(state)


def train_batches(task, batch_size: int, seed: int, ctx: DistributedContext):
    """The batch source of this process for a global ``batch_size``.

    Tasks with ``shards_across_ranks = True`` (the FFCV tasks) get the per-rank batch size and
    shard the data themselves; other tasks draw the global batch and this rank keeps its slice.
    """
    if not ctx.is_distributed:
        return task.train_batches(batch_size, seed)
    if batch_size % ctx.world_size:
        raise ValueError(f"train.batch_size: {batch_size} is not divisible by the {ctx.world_size} processes")
    if getattr(task, "shards_across_ranks", False):
        return task.train_batches(batch_size // ctx.world_size, seed)
    return ShardedBatches(task.train_batches(batch_size, seed), ctx)


# -- keeping the ranks identical ----------------------------------------------------------
def mask_tensors(model: nn.Module) -> list[torch.Tensor | None]:
    """Every mask buffer slot of the model's Linear/Conv layers, in a fixed order (None where unset)."""
    return [getattr(layer, name, None) for layer in weight_layers(model).values() for name in MASK_BUFFERS]


class MaskWatch:
    """Remembers which mask tensors (and their in-place versions) a model holds, to detect changes."""

    def __init__(self, model: nn.Module):
        self.before = [(mask, _version(mask)) for mask in mask_tensors(model)]

    def changed(self, model: nn.Module) -> bool:
        after = mask_tensors(model)
        return any(mask is not old or _version(mask) != version for (old, version), mask in zip(self.before, after))


def _version(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor._version


def broadcast_masks(model: nn.Module, ctx: DistributedContext) -> None:
    """Copy rank 0's masks to every rank (the set of masked layers is the same on all ranks)."""
    if not ctx.is_distributed:
        return
    import torch.distributed as dist

    for mask in mask_tensors(model):
        if mask is not None:
            dist.broadcast(mask, src=0)


def broadcast_buffers(model: nn.Module, ctx: DistributedContext) -> None:
    """Copy all of rank 0's buffers (BatchNorm statistics, masks) to every rank."""
    if not ctx.is_distributed:
        return
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def average_captured_dense_grads(model: nn.Module, ctx: DistributedContext) -> None:
    """Average the dense ∂L/∂θ captured for RigL (``capture_dense_grad``) over ranks, in place."""
    if not ctx.is_distributed:
        return
    import torch.distributed as dist

    for layer in weight_layers(model).values():
        grad = getattr(layer, "dense_grad", None)
        if grad is not None:
            dist.all_reduce(grad)
            grad.div_(ctx.world_size)


def sum_over_ranks(values: list[float], ctx: DistributedContext, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (the values themselves when not distributed)."""
    if not ctx.is_distributed:
        return list(values)
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def any_rank(flag: bool, ctx: DistributedContext, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one."""
    return sum_over_ranks([float(flag)], ctx, device)[0] > 0


def synchronise_step(model: nn.Module, watch: MaskWatch | None, loss: float, batch_accuracy: float,
                     ctx: DistributedContext, device: torch.device) -> tuple[float, float]:
    """After a step: global-batch mean loss and accuracy; broadcast masks if any rank changed them."""
    if not ctx.is_distributed:
        return loss, batch_accuracy
    changed = watch is not None and watch.changed(model)
    loss_sum, accuracy_sum, changed_ranks = sum_over_ranks([loss, batch_accuracy, float(changed)], ctx, device)
    if changed_ranks > 0:
        broadcast_masks(model, ctx)
    return loss_sum / ctx.world_size, accuracy_sum / ctx.world_size


def local_world_size() -> int:
    """Processes on this node (torchrun's LOCAL_WORLD_SIZE; 1 when not distributed)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
