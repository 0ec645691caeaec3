"""Prediction depth (paper Fig. 12): when a lens settles on the model's final answer.

The depth of a position is the first layer from which the lens's top-1 token stays
the output's (:func:`lensbook.analysis.statistic.prediction_depth`). :func:`depth_table`
lists it for every position, grouped by how common the predicted token is.

Example:
    >>> table = depth_table(by_lens, most_frequent(chunks.input_ids, 100))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from lensbook.analysis.statistic import prediction_depth, top_tokens
from lensbook.core.trajectory import Trajectory


def depth_table(
    trajectories: Mapping[str, Sequence[Trajectory]], frequent: set[int]
) -> pd.DataFrame:
    """Prediction depth of every position, labelled by how common the predicted token is.

    Args:
        trajectories: For each lens name, trajectories of the same texts.
        frequent: Token ids counted as "frequent" (e.g. the 100 most common in a corpus).

    Returns:
        A DataFrame with columns ``lens, prompt, position, token, group, depth``: ``token``
        is the model's output top-1 id, ``group`` is ``"frequent"`` or ``"rare"``, and
        ``depth`` the first layer from which the lens's top-1 stays the output's.
    """
    rows = []
    for lens, trajs in trajectories.items():
        for prompt, traj in enumerate(trajs):
            outputs = top_tokens(traj)[-1].tolist()
            for position, depth in enumerate(prediction_depth(traj).tolist()):
                token = outputs[position]
                group = "frequent" if token in frequent else "rare"
                rows.append((lens, prompt, position, token, group, depth))
    columns = ["lens", "prompt", "position", "token", "group", "depth"]
    return pd.DataFrame(rows, columns=columns)


def most_frequent(ids: torch.Tensor, k: int) -> set[int]:
    """The ``k`` most frequent token ids in ``ids`` (any shape)."""
    counts = torch.bincount(ids.flatten())
    return set(counts.argsort(descending=True)[:k].tolist())
