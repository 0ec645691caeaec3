"""The record of a training run: per-step, per-layer loss, learning rate and timing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pandas as pd


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
