"""Trajectories to tidy per-layer tables (``lens, layer, metric, value, unit``).

The same long format as :func:`lensbook.analysis.evaluate.evaluate_lenses`, so that
:func:`lensbook.plotting.plot_layer_metrics` draws both; the statistics come from the
registry :data:`lensbook.analysis.statistic.STATISTICS`.

Example:
    >>> table = layer_table({"logit lens": trajs})  # doctest: +SKIP
    >>> plot_layer_metrics(table, ["cross_entropy", "copy_rate"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from lensbook.analysis.statistic import get_statistic
from lensbook.core.trajectory import Trajectory

COLUMNS = ("lens", "layer", "metric", "value", "unit")
# The paper reports bits per byte; a metric with none of these units uses its first unit.
PREFERRED_UNITS = ("bits/byte", "bits", "nats/token", "nats")


def pick_unit(rows: pd.DataFrame, units: Sequence[str] = PREFERRED_UNITS) -> str:
    """The first of ``units`` that ``rows`` has, else its first unit."""
    present = list(dict.fromkeys(rows["unit"]))
    return next((u for u in units if u in present), present[0])


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
        metrics: Names from :data:`lensbook.analysis.statistic.STATISTICS`.

    Returns:
        A DataFrame with columns ``lens, layer, metric, value, unit``; layer ``L`` is the
        model's output.
    """
    rows = []
    for lens, trajs in trajectories.items():
        for metric in metrics:
            statistic = get_statistic(metric)
            per_prompt = [_per_layer(statistic.values(t)) for t in trajs]
            unit = statistic.table_unit or statistic.unit
            for layer, value in enumerate(torch.tensor(per_prompt).mean(0).tolist()):
                rows.append((lens, layer, metric, value, unit))
    return pd.DataFrame(rows, columns=list(COLUMNS))
