"""Per-layer summaries: metric curves from a tidy table, and the transfer matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

COLUMNS = ("lens", "layer", "metric", "value", "unit")


def plot_layer_metrics(df: pd.DataFrame, metrics: Sequence[str] | None = None) -> Figure:
    """One panel per metric, one line per lens, layers on the x axis.

    Args:
        df: Tidy table with columns ``lens, layer, metric, value, unit`` (what
            ``lensbook.evaluate`` produces); several rows per (lens, layer, metric)
            are averaged.
        metrics: Which metrics to draw, in order; all by default.

    Returns:
        The figure, one axes per metric, y axes labelled ``"metric (unit)"``.
    """
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"the table lacks columns {sorted(missing)}; it needs {COLUMNS}")
    metrics = list(metrics) if metrics is not None else list(dict.fromkeys(df["metric"]))
    fig = Figure(figsize=(4.2 * len(metrics) + 1.2, 3.6), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        rows = df[df["metric"] == metric]
        if rows.empty:
            raise ValueError(f"no rows for metric {metric!r}")
        sns.lineplot(data=rows, x="layer", y="value", hue="lens", marker="o", errorbar=None,
                     ax=ax)
        units = rows["unit"].unique()
        ax.set_ylabel(f"{metric} ({units[0]})" if len(units) == 1 else metric)
        ax.set_xlabel("layer")
        ax.set_title(metric)
    return fig


def plot_transfer_matrix(
    matrix: np.ndarray | pd.DataFrame,
    unit: str = "nats",
    metric: str = "cross-entropy penalty",
) -> Figure:
    """Heatmap of how well translators transfer between layers (paper Fig. 7).

    Args:
        matrix: ``(layers, layers)``: entry ``[i, j]`` is the penalty of applying the
            translator trained for layer ``i`` to the hidden state of layer ``j``. A
            DataFrame's index and columns label the axes.
        unit: Unit of the entries, for the colour bar.
        metric: What the entries are.

    Returns:
        The figure; ``fig.axes[0]`` holds the mesh.
    """
    frame = matrix if isinstance(matrix, pd.DataFrame) else pd.DataFrame(np.asarray(matrix))
    n = max(frame.shape)
    fig = Figure(figsize=(0.45 * n + 2.5, 0.4 * n + 1.8), layout="constrained")
    ax = fig.add_subplot()
    sns.heatmap(frame, ax=ax, cmap="rocket_r", square=True, annot=n <= 12, fmt=".2g",
                annot_kws={"fontsize": 7}, cbar_kws={"label": f"{metric} ({unit})"})
    ax.set_xlabel("hidden state of layer")
    ax.set_ylabel("translator trained for layer")
    ax.set_title("transfer between layers")
    return fig
