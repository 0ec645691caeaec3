"""Trajectories to tidy per-layer tables (``lens, layer, metric, value, unit``).

The same long format as :func:`lensbook.evaluate.evaluate_lenses`, so that
:func:`lensbook.plotting.plot_layer_metrics` draws both.

Example:
    >>> table = layer_table({"logit lens": trajs})  # doctest: +SKIP
    >>> plot_layer_metrics(table, ["cross_entropy", "copy_rate"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from lensbook.statistics import STATISTICS
from lensbook.trajectory import Trajectory


def copy_rate(traj: Trajectory) -> torch.Tensor:
    """Per layer and position, 1.0 where the top-1 token is the *input* token itself.

    Shape ``(layers + 1, seq)``. The logit lens at the embedding layer of a model with
    tied embeddings mostly "predicts" the token it was given.
    """
    return (traj.top1() == traj.input_ids[None]).float()


def _per_layer(values: torch.Tensor) -> list[float]:
    """Mean over positions, ignoring ``nan`` (no next token): ``(layers, seq) -> layers``."""
    return torch.nanmean(values.float(), dim=1).tolist()


def layer_table(
    trajectories: Mapping[str, Sequence[Trajectory]],
    metrics: Sequence[str] = ("entropy", "cross_entropy", "kl", "copy_rate"),
) -> pd.DataFrame:
    """Average statistics over positions and prompts, per lens and layer.

    Args:
        trajectories: For each lens name, trajectories of the same prompts.
        metrics: Names from :data:`lensbook.statistics.STATISTICS`, or ``"copy_rate"``.

    Returns:
        A DataFrame with columns ``lens, layer, metric, value, unit``; layer ``L`` is the
        model's output.
    """
    rows = []
    for lens, trajs in trajectories.items():
        for metric in metrics:
            per_prompt = [_per_layer(_values(t, metric)) for t in trajs]
            unit = "fraction" if metric == "copy_rate" else STATISTICS[metric].unit
            for layer, value in enumerate(torch.tensor(per_prompt).mean(0).tolist()):
                rows.append((lens, layer, metric, value, unit))
    return pd.DataFrame(rows, columns=["lens", "layer", "metric", "value", "unit"])


def _values(traj: Trajectory, metric: str) -> torch.Tensor:
    if metric == "copy_rate":
        return copy_rate(traj)
    if metric not in STATISTICS:
        known = [*sorted(STATISTICS), "copy_rate"]
        raise ValueError(f"unknown metric {metric!r}: choose one of {known}")
    return STATISTICS[metric].values(traj)


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
            outputs = traj.top1()[-1].tolist()
            for position, depth in enumerate(traj.prediction_depth().tolist()):
                token = outputs[position]
                group = "frequent" if token in frequent else "rare"
                rows.append((lens, prompt, position, token, group, depth))
    columns = ["lens", "prompt", "position", "token", "group", "depth"]
    return pd.DataFrame(rows, columns=columns)


def most_frequent(ids: torch.Tensor, k: int) -> set[int]:
    """The ``k`` most frequent token ids in ``ids`` (any shape)."""
    counts = torch.bincount(ids.flatten())
    return set(counts.argsort(descending=True)[:k].tolist())
