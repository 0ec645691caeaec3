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

from lensbook.analysis.statistic import copy_rate
from lensbook.core.trajectory import Trajectory


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
    rows = []
    for lens, trajectories in by_lens.items():
        hits = torch.cat([copy_rate(t) for t in trajectories], dim=1)  # (L + 1, tokens)
        layers = hits.shape[0] - 1
        rows += [{"model": model, "lens": lens, "layer": i, "layers": layers,
                  "depth": i / layers, "value": float(rate)}
                 for i, rate in enumerate(hits.mean(dim=1))]
    return pd.DataFrame(rows)
