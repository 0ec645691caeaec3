"""The checkpoint that lets a training run resume exactly.

A checkpoint (``<checkpoint_dir>/last.pt``) holds everything that determines the
rest of the run: translator weights, optimiser and scheduler state, the step, the
loss history, the RNG state and the data position (the chunk order is a fixed
permutation drawn from the config's seed, so the position is the step). It is
written to a temporary file and then renamed, so an interrupted save never destroys
the previous good checkpoint, and it is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lensbook.core.atomic import write_atomically
from lensbook.core.errors import CheckpointError
from lensbook.core.weights import load_safely
from lensbook.training.config import run_fields

CHECKPOINT_FILE = "last.pt"
# What save_checkpoint writes (training/loop.py); a file without them is not a checkpoint.
REQUIRED_KEYS = ("step", "translators", "optimizer", "scheduler", "history", "config", "rng",
                 "n_chunks")
# Said in every message about a bad checkpoint: lensbook never deletes it itself.
START_OVER = ("move it away (or set resume=False, --no-resume) to start the run over; "
              "lensbook leaves it as it is")


def checkpoint_path(folder: str | Path) -> Path:
    """Where the checkpoint of a run lives."""
    return Path(folder) / CHECKPOINT_FILE


def save_checkpoint(folder: str | Path, state: dict) -> Path:
    """Write ``state`` atomically to ``folder/last.pt``; the old file survives a crash."""
    path = checkpoint_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda partial: torch.save(state, partial))


def load_checkpoint(folder: str | Path) -> dict | None:
    """The checkpoint in ``folder``, or None if there is none.

    Raises:
        CheckpointError: Naming the file when it is truncated or corrupt, holds objects
            other than tensors and plain data (an unsafe pickle, never executed), or is
            not a lensbook training checkpoint.
    """
    path = checkpoint_path(folder)
    if not path.exists():
        return None
    state = load_safely(path, CheckpointError, "resume", START_OVER)
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(
            f"cannot resume from {path}: it is not a lensbook training checkpoint (no "
            f"{', '.join(missing[:3])}); {START_OVER}"
        )
    return state


def check_compatible(saved_config: dict, config: dict) -> None:
    """Refuse to resume a run whose defining fields differ from the checkpoint's."""
    diffs = {k: (saved_config.get(k), config.get(k)) for k in run_fields()
             if saved_config.get(k) != config.get(k)}
    if diffs:
        described = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diffs.items())
        raise CheckpointError(f"cannot resume: the checkpoint is from a different run "
                              f"({described}); {START_OVER}")
