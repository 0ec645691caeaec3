"""Optimiser, learning-rate schedule and compute dtype of a lens training run."""

from __future__ import annotations

import torch

from lensbook.training.config import TrainConfig
from lensbook.training.precision import auto_dtype


def build_optimizer(params: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov), Adam or AdamW with the config's *effective* learning rate."""
    lr, beta = config.effective_lr, config.momentum
    if config.optimizer == "sgd":
        # torch's momentum buffer grows to 1 / (1 - β) times the gradient; scaling lr by
        # (1 - β) undoes that, as the reference package does, so lr=1.0 is the paper's.
        return torch.optim.SGD(params, lr=lr * (1 - beta), momentum=beta, nesterov=True,
                               weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, betas=(beta, 0.999), weight_decay=config.weight_decay)


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Learning-rate multiplier at 0-based ``step``: linear warm-up, then linear decay to 0.

    Warm-up goes ``1/(w+1), 2/(w+1), …, w/(w+1)``; then the factor falls from 1 at
    ``step = w`` to ``1/(steps - w)`` at the last step (no step is spent at lr 0).
    """
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (steps - step) / max(1, steps - warmup))


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """A ``LambdaLR`` applying :func:`lr_factor` with the config's warm-up."""
    warmup = config.effective_warmup
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, config.steps, warmup)
    )


def compute_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    """The unembedding matmul dtype (``"auto"``: see :mod:`lensbook.training.precision`)."""
    if config.dtype == "auto":
        return auto_dtype(device)
    return getattr(torch, config.dtype)
