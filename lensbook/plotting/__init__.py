"""Figures by chart kind, with matplotlib and seaborn: lines, matrices, heatmaps, bars, text.

The modules are chart kinds, not case studies: :mod:`~lensbook.plotting.lines` (one
panel per metric, lens or case), :mod:`~lensbook.plotting.matrix` (layer × layer
matrices), :mod:`~lensbook.plotting.heatmap` (trajectory heatmaps),
:mod:`~lensbook.plotting.bars`, :mod:`~lensbook.plotting.scatter` and
:mod:`~lensbook.plotting.text`, and :mod:`~lensbook.plotting.live` redraws the training
loss while a lens trains. They draw tables
and trajectories that :mod:`lensbook.analysis` shaped; none computes data.

Every function builds a new :class:`matplotlib.figure.Figure` directly (not through
``pyplot``, so nothing is shown, kept alive or drawn twice behind your back) and
returns it; Jupyter displays a returned figure. Nothing here changes matplotlib's
global style. :func:`save_figure` writes a PNG.

Example:
    >>> fig = plot_trajectory(traj, "rank", layer_stride=2)  # doctest: +SKIP
    >>> save_figure(fig, "05-rank")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from lensbook.plotting.bars import (
    plot_depth_by_group,
    plot_detection,
    plot_top_k,
    plot_update_alignment,
)
from lensbook.plotting.heatmap import (
    HeatmapData,
    heatmap_data,
    plot_lens_comparison,
    plot_trajectory,
    strided_layers,
)
from lensbook.plotting.lines import (
    plot_alignment_by_layer,
    plot_authors_curves,
    plot_copy_curves,
    plot_depth_by_learned,
    plot_fewshot_accuracy,
    plot_final_block,
    plot_layer_metrics,
    plot_models_by_layer,
    plot_training_history,
)
from lensbook.plotting.live import LiveTrainingPlot
from lensbook.plotting.matrix import plot_layer_similarity, plot_transfer_matrix
from lensbook.plotting.scatter import plot_influence
from lensbook.plotting.text import plot_prediction_depth

__all__ = [
    "LiveTrainingPlot",
    "plot_alignment_by_layer",
    "plot_authors_curves",
    "plot_copy_curves",
    "plot_depth_by_group",
    "plot_depth_by_learned",
    "plot_detection",
    "plot_fewshot_accuracy",
    "plot_final_block",
    "HeatmapData",
    "heatmap_data",
    "plot_layer_metrics",
    "plot_influence",
    "plot_layer_similarity",
    "plot_lens_comparison",
    "plot_models_by_layer",
    "plot_prediction_depth",
    "plot_top_k",
    "plot_training_history",
    "plot_trajectory",
    "plot_transfer_matrix",
    "plot_update_alignment",
    "save_figure",
    "strided_layers",
]


def save_figure(fig: Figure, name: str, folder: str | Path = "figures", dpi: int = 150) -> Path:
    """Write ``fig`` as ``folder/name.png`` (creating the folder) and return the path."""
    path = Path(folder) / name
    if path.suffix != ".png":
        path = path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
