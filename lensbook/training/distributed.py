"""Data parallelism for lens training across processes started by ``torchrun``.

Every process holds the whole base model and the whole lens and takes its shard of
each global batch (chunk ``rank``, ``rank + world``, …). PyTorch's
``DistributedDataParallel`` (DDP) keeps the translators in step: it broadcasts the
primary process's values when training starts and sums the gradients across processes
once per step, in buckets, before the global norm clip and the optimiser step, so all
processes apply the same update. Because each process scales its loss by ``1 / tokens
in the global step``, the sum (not DDP's default mean) is the gradient one process
would get from the whole global batch.

A step back-propagates many separate (layer, token) blocks, each straight through the
lens rather than through DDP's forward, so DDP's hooks stay idle and the gradients
accumulate locally (as under ``no_sync()``); then one forward of the DDP module, a zero
that depends on every translator parameter, and its backward run DDP's all-reduce of
the accumulated gradients: one reduction per step instead of one per block.

Sharded training (FSDP2's ``fully_shard``, for a lens or model that does not fit one
device) is not implemented: :func:`check_sharding` refuses it with an explanation.

Launch (one node with 8 GPUs; several nodes)::

    torchrun --nproc-per-node 8 -m lensbook train --model NAME --output lenses/x
    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 --rdzv-backend c10d \
        --rdzv-endpoint HOST:29500 -m lensbook train --model NAME --output lenses/x
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


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


def init_from_env(backend: str | None = None, timeout: timedelta | None = None) -> Rank:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Args:
        backend: ``"nccl"`` or ``"gloo"``; default NCCL when CUDA is available, else
            gloo (which works on the CPU).
        timeout: How long to wait for the other processes to connect and for each
            collective; ``None`` keeps PyTorch's default (minutes).

    Returns:
        This process's :class:`Rank`; ``Rank()`` when not launched by ``torchrun``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return current()
    if not dist.is_initialized():
        dist.init_process_group(
            backend or ("nccl" if torch.cuda.is_available() else "gloo"), timeout=timeout)
    return current()


class ShardingUnavailableError(RuntimeError):
    """Sharded (FSDP) training was asked for; lensbook trains with full replicas only."""


def check_sharding(shard: bool) -> None:
    """Refuse sharded training with what to do instead.

    Raises:
        ShardingUnavailableError: When ``shard`` is true.
    """
    if shard:
        raise ShardingUnavailableError(
            "sharded training (FSDP2 fully_shard) is not implemented in lensbook: every "
            "process holds the whole model and lens (DistributedDataParallel). For a model "
            "too big for one GPU, train in one process with --device-map auto (the model "
            "spread over the visible GPUs, the lens on the first)"
        )


class _Translators(nn.Module):
    """The lens's trainable parameters (the same objects, not copies) as one module."""

    def __init__(self, params: list[nn.Parameter]):
        super().__init__()
        self.params = nn.ParameterList(params)

    def forward(self) -> torch.Tensor:
        """Zero, depending on every parameter: its backward adds 0 to each gradient."""
        zero = self.params[0].new_zeros(())
        return sum((p.sum() * 0 for p in self.params), zero)


def _sum_hook(state, bucket):  # no annotations: DDP checks them against real classes
    """DDP communication hook: sum a ``dist.GradBucket`` across processes (DDP averages).

    Returns:
        A ``torch.futures.Future`` of the summed bucket.
    """
    work = dist.all_reduce(bucket.buffer(), op=dist.ReduceOp.SUM, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


class GradientSync:
    """Sums the translators' accumulated gradients across processes with DDP.

    Args:
        params: The lens's trainable parameters (their ``.grad`` is summed in place).
        rank: This process's rank; with one process nothing is wrapped or sent.

    Creating it broadcasts the primary process's parameter values to every process.
    """

    def __init__(self, params: list[nn.Parameter], rank: Rank):
        self.ddp = None
        if rank.world_size == 1:
            return
        device = params[0].device
        self.ddp = DistributedDataParallel(
            _Translators(params), device_ids=[device] if device.type == "cuda" else None)
        self.ddp.register_comm_hook(None, _sum_hook)

    def __call__(self) -> None:
        """Sum every parameter's ``.grad`` across processes (no-op for one process)."""
        if self.ddp is not None:
            self.ddp().backward()


def sum_across(tensor: torch.Tensor, rank: Rank) -> None:
    """Sum a small tensor (the per-layer loss sums) in place across processes."""
    if rank.world_size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
