"""Hold a module's parameters fixed while gradients flow through it to something else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Inside the block, no parameter of ``module`` requires a gradient.

    Gradients still flow *through* the module to its inputs (a lens's translators, a
    direction being optimised, the residual stream); the parameters that required a
    gradient before require one again afterwards, even after an error.
    """
    trainable = [p for p in module.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)
