"""How deep predictions are decided: prediction depth by lens and token group."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure


def plot_depth_by_group(table: pd.DataFrame) -> Figure:
    """Mean prediction depth per lens and token group, with 95% intervals.

    Args:
        table: :func:`lensbook.tables.depth_table`: columns ``lens, group, depth``.

    Returns:
        The figure with one bar axes (layers on the y axis).
    """
    fig = Figure(figsize=(5.6, 3.6), layout="constrained")
    ax = fig.subplots()
    sns.barplot(data=table, x="group", y="depth", hue="lens", errorbar=("ci", 95), ax=ax,
                order=sorted(table["group"].unique()))
    ax.set_ylabel("prediction depth (layer)")
    ax.set_xlabel("predicted token")
    ax.set_title("where the final prediction is decided")
    return fig
