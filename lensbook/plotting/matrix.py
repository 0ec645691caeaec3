"""Matrix charts: an annotated heatmap of a layer-by-layer matrix (transfer, similarity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from lensbook.analysis.transfer import transfer_grid
from lensbook.plotting.layout import MAX_WIDTH

ANNOTATE_UP_TO = 12  # write each cell's value in matrices of at most this many rows


def plot_matrix(frame: pd.DataFrame | np.ndarray, *, label: str, title: str, xlabel: str,
                ylabel: str, fmt: str = ".2g", **heatmap) -> Figure:
    """A square, annotated (when small) heatmap with a labelled colour bar.

    Args:
        frame: The matrix; a DataFrame's index and columns label the axes.
        label: Colour-bar label.
        title: Axes title.
        xlabel: X-axis label.
        ylabel: Y-axis label.
        fmt: Format of the annotations.
        **heatmap: More arguments for ``seaborn.heatmap`` (``cmap``, ``vmin``, ``vmax``).

    Returns:
        The figure; ``fig.axes[0]`` holds the mesh.
    """
    n = max(np.shape(frame))
    side = min(0.45 * n, MAX_WIDTH - 2.5)  # a deep model's matrix shrinks to the width limit
    fig = Figure(figsize=(side + 2.5, side * 0.9 + 1.8), layout="constrained")
    ax = fig.add_subplot()
    sns.heatmap(frame, ax=ax, square=True, annot=n <= ANNOTATE_UP_TO, fmt=fmt,
                annot_kws={"fontsize": 7}, cbar_kws={"label": label}, **heatmap)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


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
            :func:`lensbook.analysis.transfer.transfer_matrix` (then ``metric`` picks the rows and
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
    title = "cross-entropy penalty" if metric == "penalty" else metric
    return plot_matrix(frame, cmap="rocket_r", label=f"{title} ({unit})",
                       title="transfer between layers", xlabel="hidden state of layer",
                       ylabel="translator trained for layer")


def plot_layer_similarity(similarity: np.ndarray, title: str = "covariance similarity") -> Figure:
    """Heatmap of an ``(L, L)`` layer-by-layer similarity matrix (paper Fig. 6).

    Args:
        similarity: Entry ``[i, j]`` compares layers ``i`` and ``j`` (1 = identical),
            e.g. :func:`lensbook.analysis.drift.covariance_similarity`.
        title: Axes title.

    Returns:
        The figure; ``fig.axes[0]`` holds the mesh.
    """
    return plot_matrix(np.asarray(similarity), cmap="mako", vmin=0, vmax=1, fmt=".2f",
                       label="cosine similarity (1 = same)", title=title, xlabel="layer",
                       ylabel="layer")
