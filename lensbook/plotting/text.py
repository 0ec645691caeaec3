"""Text charts: the input text with each token coloured (prediction depth, paper Fig. 12)."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from lensbook.analysis.depth import TextDepth
from lensbook.core.trajectory import Trajectory

DEPTH_CMAP = "viridis"
NO_DEPTH = "0.85"  # grey box: the first token, which no position predicts
VIEWS = {
    "predicted": "each token coloured by the depth of its own prediction (made at the token "
                 "before it)",
    "predicting": "each token coloured by the depth of the prediction made at it (of the "
                  "next token)",
}
FONT_SIZE = 11
CHAR_WIDTH = 0.602  # advance of a DejaVu Sans Mono character, in units of the font size
LINE_HEIGHT = 0.3  # inches per line of text


def plot_prediction_depth(traj: Trajectory | TextDepth, line_chars: int = 72,
                          view: str = "predicted") -> Figure:
    """The input text with each token coloured by a prediction depth (paper Fig. 12).

    A prediction's depth is the first layer from which the lens's top-1 token stays the
    output's. The prediction made at position ``i`` is of token ``i + 1``.

    Args:
        traj: The trajectory, or its depths alone (:func:`lensbook.text_depths`).
        line_chars: Characters per line before wrapping.
        view: ``"predicted"`` (the paper's): each token coloured by the depth of the
            prediction *of* it, made at the token before (the first token, which nothing
            predicts, is grey); ``"predicting"``: each token coloured by the depth of the
            prediction made *at* it, of the next token.

    Returns:
        The figure; token texts carry the gid ``"depth"`` and a coloured box each; the
        title says which view it is.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}: choose one of {sorted(VIEWS)}")
    traj = traj if isinstance(traj, TextDepth) else TextDepth.of(traj)
    depth, labels = traj.depth.numpy().astype(float), traj.labels
    if view == "predicted":
        depth = np.concatenate([[np.nan], depth[:-1]])
    places = _flow(labels, line_chars)
    n_lines = max(line for line, _ in places) + 1
    width = line_chars * CHAR_WIDTH * FONT_SIZE / 72  # inches
    fig = Figure(figsize=(width + 0.8, LINE_HEIGHT * n_lines + 1.3), layout="constrained")
    ax = fig.add_subplot()
    norm = Normalize(vmin=0, vmax=traj.num_layers)
    cmap = colormaps[DEPTH_CMAP]
    for label, (line, col), d in zip(labels, places, depth, strict=True):
        # Offsets in points keep the monospace columns exact whatever the axes' size.
        ax.annotate(label, xy=(0, line + 0.5), xycoords=("axes fraction", "data"),
                    xytext=(col * CHAR_WIDTH * FONT_SIZE, 0), textcoords="offset points",
                    family="monospace", fontsize=FONT_SIZE, va="center", parse_math=False,
                    gid="depth", color="white" if d < 0.6 * traj.num_layers else "black",
                    bbox=dict(boxstyle="square,pad=0.1", ec="none",
                              fc=cmap(norm(d)) if np.isfinite(d) else NO_DEPTH))
    ax.set_ylim(n_lines, 0)
    ax.axis("off")
    ax.set_title(f"prediction depth, {traj.lens_label}: {VIEWS[view]}", fontsize=10,
                 wrap=True)
    bar = fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label="prediction depth (layer)",
                       orientation="horizontal", shrink=0.6, aspect=30)
    bar.set_ticks(range(traj.num_layers + 1))
    return fig


def _flow(labels: list[str], line_chars: int) -> list[tuple[int, int]]:
    """(line, column) of each label, laid out left to right with one column between."""
    places, line, col = [], 0, 0
    for label in labels:
        if col and col + len(label) > line_chars:
            line, col = line + 1, 0
        places.append((line, col))
        col += len(label) + 1
    return places
