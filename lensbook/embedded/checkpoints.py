"""Pretrain a small model from scratch and keep its weights along the way (paper Table 2).

The paper's Table 2 relates an example's prediction depth to the training step at which
the model first learns it, using Pythia's public training checkpoints. Offline there are
no such checkpoints, so :func:`pretrain_checkpoints` makes some: it trains a fresh model
with lensbook's own pretraining loop (:func:`lensbook.embedded.pretrain.train`) and
copies its weights after the chosen steps. Nothing is downloaded or written to disk; the
same config, data and seed give the same checkpoints on the same machine, so a notebook
regenerates them in a few minutes instead of shipping them. :func:`cached_checkpoints`
keeps them in ``$LENSBOOK_CACHE`` (default ``~/.cache/lensbook``) under a key made of
everything that determines them, so a notebook's second run reads them in a second.

Example:
    >>> cfg = PretrainConfig(n_layer=4, n_embd=64, n_head=2, seq_len=128, steps=240)
    >>> model, states = pretrain_checkpoints(chunks, cfg, [30, 240], eos_id=0)  # doctest: +SKIP
    >>> early = at_checkpoint(model, states[30])  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

from lensbook.core.atomic import write_atomically
from lensbook.core.errors import InputError
from lensbook.embedded.pretrain import PretrainConfig, make_model, train
from lensbook.training.data import TokenChunks, token_ids


def pretrain_checkpoints(data: TokenChunks | torch.Tensor, cfg: PretrainConfig,
                         keep: Sequence[int], *, eos_id: int,
                         eval_data: TokenChunks | torch.Tensor | None = None,
                         ) -> tuple[PreTrainedModel, dict[int, dict[str, torch.Tensor]]]:
    """Train a fresh ``cfg`` model on ``data``; copy its weights after each step in ``keep``.

    Args:
        data: Training chunks of ``cfg.seq_len`` tokens.
        cfg: The model's size and the optimiser's settings (``cfg.steps`` steps).
        keep: Steps (1 .. ``cfg.steps``) after which to copy the weights; the last step
            is always kept, so the final model is one of the checkpoints.
        eos_id: The tokenizer's end-of-sequence id (the model's config records it).
        eval_data: Held-out chunks for the training curve (default: 8 chunks of ``data``).

    Returns:
        ``(model, states)``: the trained model (eval mode) and ``step -> state_dict``
        copies (float32, on the CPU), in increasing order of step.

    Raises:
        InputError: A step outside ``1 .. cfg.steps``.
    """
    steps = sorted({*keep, cfg.steps})
    if steps[0] < 1 or steps[-1] > cfg.steps:
        raise InputError(f"checkpoint steps must lie in 1..{cfg.steps}, got {steps}")
    ids = token_ids(data)
    held_out = token_ids(eval_data) if eval_data is not None else ids[:8]
    model = make_model(cfg, eos_id)
    states: dict[int, dict[str, torch.Tensor]] = {}

    def snapshot(step: int, trained: PreTrainedModel) -> None:
        if step in steps:
            states[step] = {k: v.detach().float().cpu().clone()
                            for k, v in trained.state_dict().items()}

    train(model, ids, held_out, cfg, desc="pretrain with checkpoints", on_step=snapshot)
    return model, states


def at_checkpoint(model: PreTrainedModel, state: dict[str, torch.Tensor]) -> PreTrainedModel:
    """A copy of ``model`` with the weights of one checkpoint (eval mode)."""
    early = copy.deepcopy(model)
    early.load_state_dict(state)
    return early.eval()


def cache_root() -> Path:
    """``$LENSBOOK_CACHE``, or ``~/.cache/lensbook``."""
    return Path(os.environ.get("LENSBOOK_CACHE", Path.home() / ".cache" / "lensbook"))


def cache_key(ids: torch.Tensor, cfg: PretrainConfig, keep: Sequence[int], eos_id: int) -> str:
    """A hash of everything the checkpoints depend on: data, config, steps, torch version."""
    digest = hashlib.sha256(ids.numpy().tobytes())
    settings = {"cfg": dataclasses.asdict(cfg), "keep": sorted({*keep, cfg.steps}),
                "eos": eos_id, "torch": torch.__version__}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def cached_checkpoints(data: TokenChunks | torch.Tensor, cfg: PretrainConfig,
                       keep: Sequence[int], *, eos_id: int, folder: Path | None = None,
                       ) -> tuple[PreTrainedModel, dict[int, dict[str, torch.Tensor]]]:
    """:func:`pretrain_checkpoints`, read from the cache when it was built before.

    Args:
        data: Training chunks (as for :func:`pretrain_checkpoints`).
        cfg: The model's size and the optimiser's settings.
        keep: Steps after which to keep the weights (the last is always kept).
        eos_id: The tokenizer's end-of-sequence id.
        folder: The cache (default :func:`cache_root`); the checkpoints live in
            ``folder/checkpoints/<key>/step<N>.safetensors``.

    Returns:
        ``(model, states)`` as :func:`pretrain_checkpoints` returns them.
    """
    ids = token_ids(data)
    where = (folder or cache_root()) / "checkpoints" / cache_key(ids, cfg, keep, eos_id)
    steps = sorted({*keep, cfg.steps})
    files = {step: where / f"step{step}.safetensors" for step in steps}
    if all(f.is_file() for f in files.values()):
        states = {step: load_file(f) for step, f in files.items()}
        model = make_model(cfg, eos_id)
        model.load_state_dict(states[cfg.steps])
        return model.eval(), states
    model, states = pretrain_checkpoints(ids, cfg, steps, eos_id=eos_id)
    where.mkdir(parents=True, exist_ok=True)
    for step, f in files.items():  # each tensor was cloned, so tied weights are two copies
        write_atomically(f, lambda partial, step=step: save_file(states[step], partial))
    return model, states

