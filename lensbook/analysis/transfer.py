"""The transfer matrix (paper Fig. 7): translator ``i`` applied to layer ``j``'s hidden state.

Entry ``(i, j)`` is the cross-entropy against the next token of
``unembed(h_j + A_i h_j + b_i)``; the *penalty* is how much worse that is than
layer ``j``'s own translator, ``ce[i, j] - ce[j, j]``. Nearby layers transfer well
when the residual stream drifts smoothly. With ``no_translator=True`` one more row,
labelled ``translator = -1`` (:data:`NO_TRANSLATOR`), decodes every layer with no
translator at all, i.e. with the logit lens: its penalty is how much worse the logit lens
is than the layer's own translator (compare it with the neighbour's row).

Example:
    >>> frame = transfer_matrix(model, lens, chunks)  # doctest: +SKIP
    >>> frame.query("metric == 'penalty' and unit == 'nats/token'").pivot(
    ...     index="translator", columns="layer", values="value")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook.analysis import metrics
from lensbook.analysis.blocks import block_tokens, token_blocks
from lensbook.analysis.tables import PREFERRED_UNITS, pick_unit
from lensbook.core.guards import check_lens_fits
from lensbook.core.lens import Lens
from lensbook.core.model import read
from lensbook.training.data import TokenChunks, bits_per_byte_of, token_ids

COLUMNS = ["lens", "translator", "layer", "metric", "value", "unit"]
NO_TRANSLATOR = -1  # the ``translator`` of the logit-lens row: the hidden state decoded as is


@torch.inference_mode()
def transfer_ce(
    model: PreTrainedModel,
    lens: Lens,
    data: TokenChunks | torch.Tensor,
    *,
    batch_size: int = 8,
    chunk_mb: float = 256.0,
    no_translator: bool = False,
) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of translator ``i`` on layer ``j``: ``(L, L)``.

    With ``no_translator``, ``(L + 1, L)``: the last row decodes each layer as it is (the
    logit lens).
    """
    check_lens_fits(model, lens)
    points, unembed = lens.read_points(), lens.unembed
    translators = [*range(len(points)), *([None] if no_translator else [])]
    sums = torch.zeros(len(translators), len(points), dtype=torch.float64)
    count = 0
    blocks = token_blocks(model, token_ids(data), batch_size=batch_size, device=unembed.device,
                          points=points,
                          block=block_tokens(unembed.vocab_size, chunk_mb))
    for hs, targets in blocks:
        valid = targets >= 0
        count += int(valid.sum())
        for j, point in enumerate(points):
            h = read(hs, point)
            for i, translator in enumerate(translators):
                logits = unembed(h if translator is None else lens.transform_hidden(h, translator))
                ce = metrics.cross_entropy(torch.log_softmax(logits.float(), -1), targets)
                sums[i, j] += ce[valid].sum().item()
    return sums / max(1, count)


def transfer_matrix(
    model: PreTrainedModel,
    lens: Lens,
    data: TokenChunks | torch.Tensor,
    *,
    name: str | None = None,
    bits_per_byte_factor: float | None = None,
    no_translator: bool = False,
    **kwargs,
) -> pd.DataFrame:
    """The transfer matrix as a tidy frame: ``lens, translator, layer, metric, value, unit``.

    Args:
        model: The base model.
        lens: A tuned lens for it.
        data: Held-out chunks (a ``TokenChunks`` also gives the bits-per-byte factor).
        name: Value of the ``lens`` column (default: the lens's label).
        bits_per_byte_factor: Overrides the factor from ``data``.
        no_translator: Add the rows ``translator = NO_TRANSLATOR`` (-1): each layer
            decoded with no translator (the logit lens), whose penalty is the logit lens's.
        **kwargs: ``batch_size`` and ``chunk_mb`` for :func:`transfer_ce`.

    Returns:
        Metrics ``ce`` and ``penalty`` (``ce[i, j] - ce[j, j]``) in ``nats/token`` and,
        when the factor is known, ``bits/byte``.
    """
    bits_per_byte_factor = bits_per_byte_of(data, bits_per_byte_factor)
    ce = transfer_ce(model, lens, data, no_translator=no_translator, **kwargs)
    penalty = ce - ce.diagonal()[None, :]  # the diagonal of the first L rows
    units = [("nats/token", 1.0)]
    if bits_per_byte_factor is not None:
        units.append(("bits/byte", bits_per_byte_factor))
    name = name or lens.label
    labels = [*range(lens.num_points), *([NO_TRANSLATOR] if no_translator else [])]
    rows = [
        (name, label, j, metric, float(values[i, j]) * factor, unit)
        for metric, values in (("ce", ce), ("penalty", penalty))
        for unit, factor in units
        for i, label in enumerate(labels)
        for j in range(lens.num_points)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def transfer_grid(frame: pd.DataFrame, metric: str = "penalty",
                  units: Sequence[str] = PREFERRED_UNITS) -> tuple[pd.DataFrame, str]:
    """Pivot a tidy :func:`transfer_matrix` table to translator × layer, and its unit."""
    rows = frame[frame["metric"] == metric]
    if rows.empty:
        raise ValueError(f"no rows for metric {metric!r}")
    unit = pick_unit(rows, units)
    grid = rows[rows["unit"] == unit].pivot_table(index="translator", columns="layer",
                                                  values="value")
    return grid, unit
