"""Process-level primitives of multi-process training under ``torchrun`` (PyTorch DDP), and the device.

The ``train`` rule starts ``python -m torch.distributed.run --standalone --nproc_per_node=N
-m bench_powerprop train ...`` when the experiment's ``resources.gpu`` is N > 1. Each process
finds RANK, WORLD_SIZE and LOCAL_RANK in its environment, joins the process group (nccl on
CUDA, gloo on CPU) and uses the device ``cuda:LOCAL_RANK``. What training does with that —
sharded batches, averaged gradients, identical masks on every rank — is
``bench_powerprop.training.strategy``'s ``DDPStrategy``.

torch is imported at module level (this module is only used by training), torch.distributed
only inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

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
        return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
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


def sum_over_ranks(values: list[float], ctx: DistributedContext, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (the values themselves when not distributed)."""
    if not ctx.is_distributed:
        return list(values)
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def local_world_size() -> int:
    """Processes on this node (torchrun's LOCAL_WORLD_SIZE; 1 when not distributed)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
