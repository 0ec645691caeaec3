"""The record of a training run and the checkpoint that lets it resume exactly.

A checkpoint (``<checkpoint_dir>/last.pt``) holds everything that determines the
rest of the run: translator weights, optimiser and scheduler state, the step, the
loss history, the RNG state and the data position (the chunk order is a fixed
permutation drawn from the config's seed, so the position is the step). It is
written to a temporary file and then renamed, so an interrupted save never destroys
the previous good checkpoint, and it is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

CHECKPOINT_FILE = "last.pt"
# Fields that must match for a run to resume from a checkpoint.
RUN_FIELDS = ("steps", "tokens_per_step", "seq_len", "seed", "optimizer", "lr", "momentum",
              "weight_decay", "warmup_steps", "clip_grad_norm")


@dataclass
class TrainHistory:
    """Per-step record of a training run.

    Attributes:
        loss: Mean KL(final ‖ lens) in nats per token, one list of ``L`` layer values
            per step (processes averaged).
        lr: Effective learning rate used at each step.
        grad_norm: Global gradient norm before clipping, per step.
        seconds: Wall-clock seconds since the start of the run, per step.
        tokens_per_step: Tokens per step, all processes together.
        bits_per_byte_factor: Multiply ``loss`` by this for bits per byte (None if the
            data did not say how many bytes it came from).
    """

    loss: list[list[float]] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    tokens_per_step: int = 0
    bits_per_byte_factor: float | None = None

    def __len__(self) -> int:
        return len(self.loss)

    def to_frame(self) -> pd.DataFrame:
        """A tidy table: one row per (step, layer), steps counted from 1."""
        rows = [
            {"step": step, "layer": layer, "kl": value, "lr": self.lr[step - 1],
             "tokens": step * self.tokens_per_step, "seconds": self.seconds[step - 1]}
            for step, losses in enumerate(self.loss, start=1)
            for layer, value in enumerate(losses)
        ]
        frame = pd.DataFrame(rows, columns=["step", "layer", "kl", "lr", "tokens", "seconds"])
        if self.bits_per_byte_factor is not None:
            frame["kl_bits_per_byte"] = frame["kl"] * self.bits_per_byte_factor
        return frame

    def to_dict(self) -> dict:
        """Plain lists and numbers (what a checkpoint stores)."""
        return dataclasses.asdict(self)


def checkpoint_path(folder: str | Path) -> Path:
    """Where the checkpoint of a run lives."""
    return Path(folder) / CHECKPOINT_FILE


def save_checkpoint(folder: str | Path, state: dict) -> Path:
    """Write ``state`` atomically to ``folder/last.pt``; the old file survives a crash."""
    path = checkpoint_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(folder: str | Path) -> dict | None:
    """The checkpoint in ``folder``, or None if there is none."""
    path = checkpoint_path(folder)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def check_compatible(saved_config: dict, config: dict) -> None:
    """Refuse to resume a run whose defining fields differ from the checkpoint's."""
    diffs = {k: (saved_config.get(k), config.get(k)) for k in RUN_FIELDS
             if saved_config.get(k) != config.get(k)}
    if diffs:
        described = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diffs.items())
        raise ValueError(f"cannot resume: the checkpoint is from a different run ({described})")
