"""Optimiser, learning-rate schedule and compute dtype of a lens training run."""

from __future__ import annotations

import torch

from lensbook.training.config import TrainConfig
from lensbook.training.precision import auto_dtype


def build_optimizer(params: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov), Adam, AdamW or Muon with the config's *effective* learning rate."""
    lr, beta = config.effective_lr, config.momentum
    if config.optimizer == "muon":
        return MuonAdamW(params, lr=lr, momentum=beta, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        # torch's momentum buffer grows to 1 / (1 - β) times the gradient; scaling lr by
        # (1 - β) undoes that, as the reference package does, so lr=1.0 is the paper's.
        return torch.optim.SGD(params, lr=lr * (1 - beta), momentum=beta, nesterov=True,
                               weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, betas=(beta, 0.999), weight_decay=config.weight_decay)


def muon_class() -> type[torch.optim.Optimizer]:
    """``torch.optim.Muon``, or an error naming the torch version that lacks it."""
    muon = getattr(torch.optim, "Muon", None)
    if muon is None:
        raise RuntimeError(
            f"optimizer='muon' needs torch.optim.Muon (PyTorch 2.9 or newer); this torch "
            f"is {torch.__version__}. Upgrade torch or choose sgd, adam or adamw"
        )
    return muon


class MuonAdamW(torch.optim.Optimizer):
    """Muon for the 2-D translator matrices ``A_l``, AdamW for the biases ``b_l``.

    ``torch.optim.Muon`` orthogonalises each matrix's momentum (Newton–Schulz) and takes
    only 2-D parameters, so the biases need a companion; both use one learning rate,
    since Muon's ``adjust_lr_fn="match_rms_adamw"`` scales its update to AdamW's size
    (Moonshot's rule, ``0.2 * sqrt(max(rows, cols))``). Weight decay is decoupled in both,
    and pulls the translators towards the logit lens. The two optimisers' parameter
    groups are this one's, so a learning-rate scheduler drives both.

    Args:
        params: The lens's trainable parameters.
        lr: Learning rate (AdamW's scale).
        momentum: Muon's Nesterov momentum and AdamW's beta1.
        weight_decay: Decoupled weight decay of both.
    """

    def __init__(self, params: list[torch.nn.Parameter], *, lr: float, momentum: float,
                 weight_decay: float):
        matrices = [p for p in params if p.ndim == 2]
        others = [p for p in params if p.ndim != 2]
        self.parts: list[torch.optim.Optimizer] = []
        if matrices:
            self.parts.append(muon_class()(matrices, lr=lr, momentum=momentum, nesterov=True,
                                           weight_decay=weight_decay,
                                           adjust_lr_fn="match_rms_adamw"))
        if others:
            self.parts.append(torch.optim.AdamW(others, lr=lr, betas=(momentum, 0.999),
                                                weight_decay=weight_decay))
        groups = [group for part in self.parts for group in part.param_groups]
        super().__init__(groups, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        """One step of each part (Muon, then AdamW)."""
        loss = closure() if closure is not None else None
        for part in self.parts:
            part.step()
        return loss

    def state_dict(self) -> dict:
        """The parts' states (and their groups, learning rates included)."""
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load what :meth:`state_dict` returned."""
        for part, state in zip(self.parts, state_dict["parts"], strict=True):
            part.load_state_dict(state)
        self.param_groups[:] = [group for part in self.parts for group in part.param_groups]


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
