"""Iterative inference (the paper's Fig. 19): do the blocks walk downhill on the loss?

If a model refines one prediction block by block, each block's update of the residual
stream, ``Δ_ℓ = block_ℓ(h_ℓ) - h_ℓ``, should point against the gradient of the model's
loss with respect to that stream, ``∇_{h_ℓ} loss``: a first-order step downhill, so
``cos(Δ_ℓ, ∇_{h_ℓ} loss) < 0``. The paper finds the cosine negative at almost every
position of Pythia-6.9B. :func:`update_alignment` measures it; :func:`layer_deletion`
measures the other half of the figure: how much the loss rises when one block is skipped
(or, with ``keep``, scaled down). ``update_alignment(..., at="output")`` measures the
cosine with the gradient at the block's output ``h_{ℓ+1}`` instead of its input.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from lensbook.core.block_io import block_input, block_output, with_block_output
from lensbook.core.frozen import frozen
from lensbook.core.parts import find_parts


@contextmanager
def _recording(blocks: nn.ModuleList) -> Iterator[list[list[torch.Tensor]]]:
    """Record each block's ``[input, output]`` residual stream; both keep their grad."""
    pairs: list[list[torch.Tensor]] = [[] for _ in blocks]

    def before(i: int):
        def hook(module, args, kwargs):
            h = block_input(args, kwargs)
            h.retain_grad()
            pairs[i][:] = [h]
        return hook

    def after(i: int):
        def hook(module, args, kwargs, output):
            h = block_output(output)
            if h.requires_grad:
                h.retain_grad()
            pairs[i].append(h)
        return hook

    handles = [b.register_forward_pre_hook(before(i), with_kwargs=True)
               for i, b in enumerate(blocks)]
    handles += [b.register_forward_hook(after(i), with_kwargs=True) for i, b in enumerate(blocks)]
    try:
        yield pairs
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _stream_gradients(model: PreTrainedModel) -> Iterator[None]:
    """Gradients for the residual stream only: weights frozen, embeddings' output tracked."""
    handle = model.get_input_embeddings().register_forward_hook(
        lambda module, args, out: out.requires_grad_())
    try:
        with frozen(model), torch.enable_grad():
            yield
    finally:
        handle.remove()


def _loss(model: PreTrainedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of the model on ``input_ids``."""
    logits = model(input_ids=input_ids).logits[:, :-1]
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # fp32 or better
    return F.cross_entropy(logits.flatten(0, 1), input_ids[:, 1:].flatten())


def update_alignment(model: PreTrainedModel, input_ids: torch.Tensor,
                     batch_size: int = 8, at: str = "input") -> pd.DataFrame:
    """Cosine between each block's update and the loss gradient at its input, per position.

    Args:
        model: A causal LM (its weights get no gradient; only the residual stream does).
        input_ids: ``(sequences, seq)`` token ids.
        batch_size: Sequences per forward/backward pass.
        at: Where the gradient is taken: ``"input"`` (``h_ℓ``, the paper's) or
            ``"output"`` (``h_{ℓ+1}``, after the update).

    Returns:
        One row per (layer, sequence, position): ``layer`` (the block), ``sequence``,
        ``position``, ``cosine``. The last position of each sequence is left out: no
        loss depends on it, so its gradient is zero.
    """
    if at not in ("input", "output"):
        raise ValueError(f"at must be 'input' or 'output', not {at!r}")
    blocks = find_parts(model).layers
    frames = []
    for start in range(0, len(input_ids), batch_size):
        batch = input_ids[start:start + batch_size].to(model.device)
        with _stream_gradients(model), _recording(blocks) as pairs:
            _loss(model, batch).backward()
        for layer, (h_in, h_out) in enumerate(pairs):
            update = (h_out - h_in).detach().float()
            grad = (h_in if at == "input" else h_out).grad
            cos = F.cosine_similarity(update, grad.float(), dim=-1)
            frames.append(_cells(cos[:, :-1], layer, start))  # the last position has no loss
    return pd.concat(frames, ignore_index=True)


def _cells(values: torch.Tensor, layer: int, first_sequence: int) -> pd.DataFrame:
    seq, pos = torch.meshgrid(torch.arange(values.shape[0]), torch.arange(values.shape[1]),
                              indexing="ij")
    return pd.DataFrame({"layer": layer, "sequence": (seq + first_sequence).flatten().numpy(),
                         "position": pos.flatten().numpy(),
                         "cosine": values.flatten().cpu().numpy()})


@contextmanager
def _skipping(block: nn.Module, keep: float = 0.0) -> Iterator[None]:
    """Scale ``block``'s update by ``keep``: with 0 its output residual is its input."""
    def hook(module, args, kwargs, output):
        h = block_input(args, kwargs)
        h = h + keep * (block_output(output) - h) if keep else h
        return with_block_output(output, h)

    handle = block.register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def layer_deletion(model: PreTrainedModel, input_ids: torch.Tensor,
                   batch_size: int = 8, keep: float = 0.0) -> pd.DataFrame:
    """The model's loss with each block deleted (skipped), against the intact model.

    Args:
        model: A causal LM.
        input_ids: ``(sequences, seq)`` token ids.
        batch_size: Sequences per forward pass.
        keep: The share of the block's update kept: 0 deletes the block, 0.5 halves its
            update.

    Returns:
        One row per block: ``layer``, ``loss`` (nats per token with that block skipped),
        ``increase`` (over the intact model's loss, which ``attrs["intact"]`` holds;
        ``attrs["keep"]`` holds ``keep``).
    """
    def mean_loss() -> float:
        losses = [_loss(model, input_ids[i:i + batch_size].to(model.device)).item()
                  for i in range(0, len(input_ids), batch_size)]
        return sum(losses) / len(losses)

    intact = mean_loss()
    rows = []
    for layer, block in enumerate(find_parts(model).layers):
        with _skipping(block, keep):
            loss = mean_loss()
        rows.append({"layer": layer, "loss": loss, "increase": loss - intact})
    frame = pd.DataFrame(rows)
    frame.attrs["intact"] = intact
    frame.attrs["keep"] = keep
    return frame


def alignment_summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Per layer: median cosine and the fraction of positions where it is negative."""
    grouped = cells.groupby("layer")["cosine"]
    return pd.DataFrame({"median": grouped.median(),
                         "negative": grouped.apply(lambda c: float((c < 0).mean()))})
