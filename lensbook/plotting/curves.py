"""Per-layer summaries: metric curves from a tidy table, and the transfer matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

COLUMNS = ("lens", "layer", "metric", "value", "unit")
# The paper reports bits per byte; a metric with none of these units uses its first unit.
PREFERRED_UNITS = ("bits/byte", "bits", "nats/token", "nats")


def pick_unit(rows: pd.DataFrame, units: Sequence[str] = PREFERRED_UNITS) -> str:
    """The first of ``units`` that ``rows`` has, else its first unit."""
    present = list(dict.fromkeys(rows["unit"]))
    return next((u for u in units if u in present), present[0])


def plot_layer_metrics(
    df: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    units: Sequence[str] = PREFERRED_UNITS,
) -> Figure:
    """One panel per metric, one line per lens, layers on the x axis.

    Args:
        df: Tidy table with columns ``lens, layer, metric, value, unit`` (what
            :func:`lensbook.evaluate.evaluate_lenses` returns); several rows per
            (lens, layer, metric, unit) are averaged.
        metrics: Which metrics to draw, in order; all by default.
        units: Preferred units: each panel shows its metric in the first of these that
            the table has (a metric is often given in both nats/token and bits/byte).

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
        unit = pick_unit(rows, units)
        sns.lineplot(data=rows[rows["unit"] == unit], x="layer", y="value", hue="lens",
                     marker="o", errorbar=None, ax=ax)
        ax.set_ylabel(f"{metric} ({unit})")
        ax.set_xlabel("layer")
        ax.set_title(metric)
    return fig


def transfer_grid(frame: pd.DataFrame, metric: str = "penalty",
                  units: Sequence[str] = PREFERRED_UNITS) -> tuple[pd.DataFrame, str]:
    """Pivot a tidy transfer table (``lensbook.transfer``) to translator × layer, and its unit."""
    rows = frame[frame["metric"] == metric]
    if rows.empty:
        raise ValueError(f"no rows for metric {metric!r}")
    unit = pick_unit(rows, units)
    grid = rows[rows["unit"] == unit].pivot_table(index="translator", columns="layer",
                                                  values="value")
    return grid, unit


def plot_transfer_matrix(
    matrix: np.ndarray | pd.DataFrame,
    unit: str = "nats/token",
    metric: str = "penalty",
) -> Figure:
    """Heatmap of how well translators transfer between layers (paper Fig. 7).

    Args:
        matrix: Entry ``[i, j]`` is the cost of applying the translator trained for
            layer ``i`` to the hidden state of layer ``j``: an array, a DataFrame whose
            index and columns label the axes, or the tidy table of
            :func:`lensbook.transfer.transfer_matrix` (then ``metric`` picks the rows and
            the unit comes from the table).
        unit: Unit of the entries, for the colour bar (ignored for a tidy table).
        metric: What the entries are (``"penalty"``: CE minus the layer's own translator's).

    Returns:
        The figure; ``fig.axes[0]`` holds the mesh.
    """
    if isinstance(matrix, pd.DataFrame) and {"translator", "metric"} <= set(matrix.columns):
        frame, unit = transfer_grid(matrix, metric)
    elif isinstance(matrix, pd.DataFrame):
        frame = matrix
    else:
        frame = pd.DataFrame(np.asarray(matrix))
    n = max(frame.shape)
    fig = Figure(figsize=(0.45 * n + 2.5, 0.4 * n + 1.8), layout="constrained")
    ax = fig.add_subplot()
    title = "cross-entropy penalty" if metric == "penalty" else metric
    sns.heatmap(frame, ax=ax, cmap="rocket_r", square=True, annot=n <= 12, fmt=".2g",
                annot_kws={"fontsize": 7}, cbar_kws={"label": f"{title} ({unit})"})
    ax.set_xlabel("hidden state of layer")
    ax.set_ylabel("translator trained for layer")
    ax.set_title("transfer between layers")
    return fig


def plot_models_by_layer(curves: pd.DataFrame, unit: str = "bits/byte", x: str = "depth",
                         metric: str = "cross-entropy") -> Figure:
    """One panel per lens, one line per model: the paper's Figs. 5 and 14.

    Args:
        curves: Columns ``model, lens, value`` and ``x`` (what
            :func:`lensbook.compare.layer_curves` returns).
        unit: Unit of ``value``, for the y label.
        x: ``"depth"`` (fraction of the model's layers; 1 is the output) or ``"layer"``.
        metric: What ``value`` is, for the y label.

    Returns:
        The figure; the panels share their y axis so that the lenses compare directly.
    """
    lenses = list(dict.fromkeys(curves["lens"]))
    models = list(dict.fromkeys(curves["model"]))  # legend in the order given
    fig = Figure(figsize=(4.4 * len(lenses) + 1.4, 3.6), layout="constrained")
    axes = fig.subplots(1, len(lenses), sharey=True, squeeze=False)[0]
    for ax, lens in zip(axes, lenses, strict=True):
        sns.lineplot(data=curves[curves["lens"] == lens], x=x, y="value", hue="model",
                     hue_order=models, marker="o", errorbar=None, ax=ax, legend=ax is axes[-1])
        ax.set_title(lens)
        ax.set_xlabel("depth (fraction of layers)" if x == "depth" else x)
        ax.set_ylabel(f"{metric} ({unit})")
    return fig
