"""Memory estimates of training and evaluation, printed as one line before they start.

An estimate adds what a run holds at its peak: the base model's weights, the lenses'
parameters (with gradients and optimiser state when training), copies of the output
head (none when the compute dtype is the model's: the lens shares the model's head),
one forward batch's hidden states and activations, and the full-vocabulary blocks of
logits, which are bounded by ``chunk_mb`` whatever the batch. It is an estimate of the
tensors, not of the allocator's or the libraries' own overhead.

Example:
    >>> print(training_memory(model, lens, config))  # doctest: +SKIP
    memory estimate (training): model 2.9 GiB, lens 384 MiB, head copies 0 B, ...
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from lensbook.core.head import Unembed


@dataclass
class MemoryEstimate:
    """Bytes a run holds at its peak, part by part.

    Attributes:
        what: What runs (``"training"``, ``"evaluation"``).
        parts: Part name -> bytes, in the order printed.
    """

    what: str
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All parts together, in bytes."""
        return sum(self.parts.values())

    def __str__(self) -> str:
        items = ", ".join(f"{name} {human(n)}" for name, n in self.parts.items())
        return f"memory estimate ({self.what}): {items}; total about {human(self.total)}"


def human(n: float) -> str:
    """``n`` bytes as ``"1.5 GiB"``, ``"12 MiB"``, ``"0 B"``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(n)} B"


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of distinct storages among ``tensors`` (shared storage counted once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def module_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers (tied or shared weights once)."""
    return tensor_bytes([*module.parameters(), *module.buffers()])


def head_copy_bytes(unembed: Unembed, dtype: torch.dtype) -> int:
    """Bytes of the head copy a compute dtype needs (0 when the shared head is used as is)."""
    weight = unembed.weight
    if dtype == weight.dtype and unembed.logit_scale is None:
        return 0
    return weight.numel() * dtype.itemsize


def forward_bytes(model: nn.Module, tokens: int) -> int:
    """One forward batch: every layer's hidden state kept, plus the widest activation."""
    config = model.config.get_text_config()
    d, layers = config.hidden_size, config.num_hidden_layers
    wide = getattr(config, "intermediate_size", None) or 4 * d
    itemsize = next(model.parameters()).dtype.itemsize
    return tokens * itemsize * ((layers + 1) * d + 3 * wide)


def release_memory() -> None:
    """Collect garbage and hand freed heap memory back to the OS (glibc's ``malloc_trim``).

    Without the trim, the memory of a freed model stays in the process's RSS, which is
    what a small machine's memory limit (Binder: 2 GB) counts.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
