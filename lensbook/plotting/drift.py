"""Similarity between layers' hidden-state covariances (paper Fig. 6)."""

from __future__ import annotations

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure


def plot_layer_similarity(similarity: np.ndarray, title: str = "covariance similarity") -> Figure:
    """Heatmap of an ``(L, L)`` layer-by-layer similarity matrix, annotated when small.

    Args:
        similarity: Entry ``[i, j]`` compares layers ``i`` and ``j`` (1 = identical),
            e.g. :func:`lensbook.drift.covariance_similarity`.
        title: Axes title.

    Returns:
        The figure; ``fig.axes[0]`` holds the mesh.
    """
    similarity = np.asarray(similarity)
    n = similarity.shape[0]
    fig = Figure(figsize=(0.45 * n + 2.5, 0.4 * n + 1.8), layout="constrained")
    ax = fig.add_subplot()
    sns.heatmap(similarity, ax=ax, cmap="mako", vmin=0, vmax=1, square=True,
                annot=n <= 12, fmt=".2f", annot_kws={"fontsize": 7},
                cbar_kws={"label": "cosine similarity (1 = same)"})
    ax.set_xlabel("layer")
    ax.set_ylabel("layer")
    ax.set_title(title)
    return fig
