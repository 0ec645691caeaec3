"""Held-out chunks as blocks of tokens: the loop that evaluation and transfer share.

One forward pass per batch of chunks (:func:`lensbook.core.model.hidden_states`), then
blocks of at most ``block`` tokens, so that ``(tokens, vocab)`` buffers stay within a
memory budget whatever the vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from lensbook.core.guards import check_finite, check_ids
from lensbook.core.model import Hidden, ReadPoint, hidden_states
from lensbook.core.trajectory import NO_TARGET


def next_token_targets(ids: torch.Tensor) -> torch.Tensor:
    """Next-token targets ``(batch, seq)``; ``-100`` at the last position of each chunk."""
    return torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], NO_TARGET)], dim=1)


def block_tokens(vocab: int, chunk_mb: float) -> int:
    """Tokens per block so that the float32 temporaries fit in ``chunk_mb`` MiB."""
    return max(1, int(chunk_mb * 2**20 / (4 * vocab * 4)))  # ~4 (tokens, vocab) buffers


def token_blocks(
    model: PreTrainedModel,
    ids: torch.Tensor,
    *,
    batch_size: int,
    block: int,
    device: torch.device,
    progress: bool = False,
    points: Iterable[ReadPoint] = (),
) -> Iterator[tuple[Hidden, torch.Tensor]]:
    """Yield ``(hidden_states, targets)`` for each block of tokens of ``ids``.

    Args:
        model: The base model.
        ids: Chunks ``(n_chunks, seq_len)``.
        batch_size: Chunks per forward pass.
        block: Tokens per block.
        device: Where the lens computes (the hidden states are moved there).
        progress: Show a progress bar over batches.
        points: The read points of the lenses; mid-block (``"attn"``) ones are captured.

    Yields:
        The ``L + 1`` hidden states of the block's tokens, each ``(tokens, d)`` (and the
        mid-block states of ``points`` in ``.mid``), and
        their next-token targets ``(tokens,)`` (``-100`` where there is none).

    Raises:
        InputError: Empty chunks, chunks longer than the context or ids outside the
            vocabulary.
        NonFiniteModelError: The model's hidden states are NaN or infinite.
    """
    check_ids(model, ids)
    for batch in tqdm(ids.split(batch_size), disable=not progress, desc="evaluate"):
        raw = hidden_states(model, batch.to(model.device), points=points)
        check_finite(model, raw[-1], "hidden states")
        hs = raw.map(lambda h: h.reshape(-1, h.shape[-1]).to(device))
        targets = next_token_targets(batch).reshape(-1).to(device)
        for t0 in range(0, targets.shape[0], block):
            rows = slice(t0, t0 + block)
            yield hs.map(lambda h, rows=rows: h[rows]), targets[rows]
