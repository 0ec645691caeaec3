"""Data parallelism for lens training across processes started by ``torchrun``.

Every process holds the whole base model and the whole lens, takes its shard of
each global batch (chunk ``rank``, ``rank + world``, …), and the translators'
gradients are summed across processes once per step before the global norm clip
and the optimiser step, so all processes apply the same update. Because each
process scales its loss by ``1 / tokens in the global step``, the sum equals the
gradient one process would get from the whole global batch. This is what PyTorch's
``DistributedDataParallel`` does, done by hand because a step back-propagates many
separate (layer, token) blocks; one all-reduce per step instead of one per block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Rank:
    """This process's place among the training processes.

    Attributes:
        rank: Global rank (0 is the primary process, which writes files).
        world_size: Number of processes.
        local_rank: Rank on this machine (selects the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def primary(self) -> bool:
        """Whether this process writes files and shows progress."""
        return self.rank == 0

    def shard(self, items: torch.Tensor) -> torch.Tensor:
        """This process's share of a global batch: ``items[rank::world_size]``."""
        return items[self.rank::self.world_size]


def current() -> Rank:
    """The rank of this process (rank 0 of 1 without an initialised process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Rank()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return Rank(dist.get_rank(), dist.get_world_size(), local)


def init_from_env(backend: str | None = None) -> Rank:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Args:
        backend: ``"nccl"`` or ``"gloo"``; default NCCL when CUDA is available, else
            gloo (which works on the CPU).

    Returns:
        This process's :class:`Rank`; ``Rank()`` when not launched by ``torchrun``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return current()
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return current()


def sum_across(tensors: list[torch.Tensor], rank: Rank) -> None:
    """Sum tensors in place across processes (one flat all-reduce); no-op for one."""
    if rank.world_size == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def broadcast_from_primary(tensors: list[torch.Tensor], rank: Rank) -> None:
    """Make every process start from the primary process's values."""
    if rank.world_size == 1:
        return
    for t in tensors:
        dist.broadcast(t, src=0)
