"""How often a lens's top-1 token is the input token itself (the paper's Figs. 17/18).

The logit lens of BLOOM and OPT "predicts" the token it was given at many layers: the
hidden state still looks like its own embedding. :func:`input_copy_curves` measures, per
layer, the fraction of positions whose top-1 token equals the input token, for each
lens; the model's own output row gives the base rate (how often the next token really
repeats the current one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook.analysis.statistic import copy_rate
from lensbook.core.lens import Lens
from lensbook.core.run import trajectories_from_ids
from lensbook.core.trajectory import Trajectory


def input_copy_rates(model: PreTrainedModel, lenses: Mapping[str, Lens],
                     sequences: Sequence[Sequence[int]], *, model_name: str = "",
                     batch_size: int = 4) -> pd.DataFrame:
    """:func:`input_copy_curves` over many sequences, a batch at a time.

    Only one batch's full-vocabulary trajectories are held at once (a 50k-token
    vocabulary makes each ``layers × tokens × 50k``), so memory stays flat.
    """
    hits: dict[str, list[torch.Tensor]] = {name: [] for name in lenses}
    for start in range(0, len(sequences), batch_size):
        batch = trajectories_from_ids(model, lenses, sequences[start:start + batch_size])
        for name, trajectories in batch.items():
            hits[name] += [copy_rate(t) for t in trajectories]
    return _curves(hits, model_name)


def input_copy_curves(by_lens: Mapping[str, Sequence[Trajectory]],
                      model: str = "") -> pd.DataFrame:
    """Per lens and layer, the fraction of positions whose top-1 is the input token.

    Args:
        by_lens: Trajectories per lens (what ``trajectories_from_ids`` returns); all
            trajectories of a lens have the same layers.
        model: A name for the ``model`` column (to stack several models' curves).

    Returns:
        Columns ``model, lens, layer, layers, depth, value``; the row with
        ``layer == layers`` is the model's own output (the base rate).
    """
    return _curves({lens: [copy_rate(t) for t in trajectories]
                    for lens, trajectories in by_lens.items()}, model)


def _curves(hits: Mapping[str, Sequence[torch.Tensor]], model: str) -> pd.DataFrame:
    """Average per-position hits ``(L + 1, seq)`` over all positions, per lens and layer."""
    rows = []
    for lens, per_sequence in hits.items():
        rates = torch.cat(list(per_sequence), dim=1).mean(dim=1)  # (L + 1,)
        layers = len(rates) - 1
        rows += [{"model": model, "lens": lens, "layer": i, "layers": layers,
                  "depth": i / layers, "value": float(rate)} for i, rate in enumerate(rates)]
    return pd.DataFrame(rows)
