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
from lensbook.core.model import read, run_model
from lensbook.core.trajectory import Trajectory


@torch.no_grad()
def input_copy_rates(model: PreTrainedModel, lenses: Mapping[str, Lens],
                     input_ids: torch.Tensor, *, model_name: str = "",
                     batch_size: int = 4) -> pd.DataFrame:
    """:func:`input_copy_curves` over many sequences, lean: only top-1 ids are kept.

    Each read point is decoded on its own and reduced to its top-1 token at once, so
    memory holds one ``(batch, seq, vocab)`` block of logits, not a trajectory of every
    layer (with a 50k vocabulary a trajectory is ``layers × tokens × 50k`` floats).

    Args:
        model: The model the lenses belong to.
        lenses: Lenses by name (residual-stream read points).
        input_ids: ``(sequences, seq)`` token ids, e.g. ``load_chunks(...).input_ids``.
        model_name: For the ``model`` column.
        batch_size: Sequences per forward pass.
    """
    hits: dict[str, list[torch.Tensor]] = {name: [] for name in lenses}
    for start in range(0, len(input_ids), batch_size):
        ids = input_ids[start:start + batch_size].to(model.device)
        hidden, logits = run_model(model, ids)
        output = logits.argmax(-1) == ids
        for name, lens in lenses.items():
            rows = [lens(read(hidden, p), i).argmax(-1) == ids
                    for i, p in enumerate(lens.read_points())]
            # (L + 1, batch * seq) per batch: the lens's rows, then the output.
            hits[name].append(torch.stack([*rows, output]).flatten(1).float().cpu())
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
