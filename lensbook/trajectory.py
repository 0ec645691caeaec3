"""Run lenses over token sequences: per-layer logits whose last row is the model's output."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from lensbook.lenses import LogitLens


@torch.inference_mode()
def layer_logits(
    model: PreTrainedModel,
    lens: LogitLens,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Decode every layer of ``model`` on ``input_ids`` with ``lens``.

    Args:
        model: The causal LM.
        lens: A :class:`~lensbook.lenses.LogitLens` or ``TunedLens`` for ``model``.
        input_ids: Token ids, shape ``(batch, seq)``.
        attention_mask: Optional mask of shape ``(batch, seq)`` (1 = real token).

    Returns:
        Logits of shape ``(L + 1, batch, seq, vocab)``: rows ``0..L-1`` from the lens,
        row ``L`` the model's own logits.
    """
    out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    lens_rows = lens.decode_all(out.hidden_states)
    return torch.cat([lens_rows.to(out.logits.dtype), out.logits[None]])
