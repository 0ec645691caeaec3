"""The transfer matrix (paper Fig. 7): translator ``i`` applied to layer ``j``'s hidden state.

Entry ``(i, j)`` is the cross-entropy against the next token of
``unembed(h_j + A_i h_j + b_i)``; the *penalty* is how much worse that is than
layer ``j``'s own translator, ``ce[i, j] - ce[j, j]``. Nearby layers transfer well
when the residual stream drifts smoothly.

Example:
    >>> frame = transfer_matrix(model, lens, chunks)  # doctest: +SKIP
    >>> frame.query("metric == 'penalty' and unit == 'nats/token'").pivot(
    ...     index="translator", columns="layer", values="value")  # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook import metrics
from lensbook.data import TokenChunks
from lensbook.evaluate import block_tokens, next_token_targets
from lensbook.lenses import TunedLens
from lensbook.train import hidden_states

COLUMNS = ["lens", "translator", "layer", "metric", "value", "unit"]


@torch.inference_mode()
def transfer_ce(
    model: PreTrainedModel,
    lens: TunedLens,
    data: TokenChunks | torch.Tensor,
    *,
    batch_size: int = 8,
    chunk_mb: float = 256.0,
) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of translator ``i`` on layer ``j``: ``(L, L)``."""
    ids = data.input_ids if isinstance(data, TokenChunks) else data
    n_layers, device = lens.num_layers, lens.unembed.unembed.weight.device
    sums = torch.zeros(n_layers, n_layers, dtype=torch.float64)
    count = 0
    block = block_tokens(lens.unembed.vocab_size, chunk_mb)
    for batch in ids.split(batch_size):
        hs = [h.reshape(-1, h.shape[-1]).to(device)
              for h in hidden_states(model, batch.to(model.device))]
        targets = next_token_targets(batch).reshape(-1).to(device)
        valid = targets >= 0
        count += int(valid.sum())
        for t0 in range(0, targets.shape[0], block):
            rows = slice(t0, t0 + block)
            for j in range(n_layers):
                for i in range(n_layers):
                    logits = lens.unembed(lens.transform_hidden(hs[j][rows], i))
                    ce = metrics.cross_entropy(torch.log_softmax(logits.float(), -1),
                                               targets[rows])
                    sums[i, j] += ce[valid[rows]].sum().item()
    return sums / max(1, count)


def transfer_matrix(
    model: PreTrainedModel,
    lens: TunedLens,
    data: TokenChunks | torch.Tensor,
    *,
    name: str = "tuned",
    bits_per_byte_factor: float | None = None,
    **kwargs,
) -> pd.DataFrame:
    """The transfer matrix as a tidy frame: ``lens, translator, layer, metric, value, unit``.

    Args:
        model: The base model.
        lens: A tuned lens for it.
        data: Held-out chunks (a ``TokenChunks`` also gives the bits-per-byte factor).
        name: Value of the ``lens`` column.
        bits_per_byte_factor: Overrides the factor from ``data``.
        **kwargs: ``batch_size`` and ``chunk_mb`` for :func:`transfer_ce`.

    Returns:
        Metrics ``ce`` and ``penalty`` (``ce[i, j] - ce[j, j]``) in ``nats/token`` and,
        when the factor is known, ``bits/byte``.
    """
    if bits_per_byte_factor is None and isinstance(data, TokenChunks):
        bits_per_byte_factor = data.bits_per_byte_factor
    ce = transfer_ce(model, lens, data, **kwargs)
    penalty = ce - ce.diagonal()[None, :]
    units = [("nats/token", 1.0)]
    if bits_per_byte_factor is not None:
        units.append(("bits/byte", bits_per_byte_factor))
    rows = [
        (name, i, j, metric, float(values[i, j]) * factor, unit)
        for metric, values in (("ce", ce), ("penalty", penalty))
        for unit, factor in units
        for i in range(lens.num_layers)
        for j in range(lens.num_layers)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)
