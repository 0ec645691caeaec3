"""The trajectory heatmap: layers × positions, the top-1 token in each cell.

It follows nostalgebraist's logit-lens plots: layers bottom to top (the model's
output last), positions left to right, the top-1 token written in each cell, the
colour a chosen statistic, and a star where the top-1 token is the true next token.

Tests and widgets can read what is drawn: :func:`heatmap_data` returns the cells'
values, texts and stars, and the figure's artists carry gids: the mesh
``"statistic"``, the cell texts ``"top1"``, the star markers ``"stars"``, the input
and next-token labels ``"input"`` and ``"target"``, the row names ``"layer"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory, offset_copy

from lensbook.analysis.statistic import Statistic, get_statistic, top_tokens
from lensbook.core.trajectory import Trajectory

MAX_CHARS = 7  # longer token labels are cut with "…" so that cells stay narrow
CELL_FONT_SIZE = 8
STAR_COLOR = "gold"
LABEL_PAD = 58  # points between the heatmap and its axis titles: room for rotated tokens


def strided_layers(num_rows: int, stride: int) -> list[int]:
    """Rows ``0, stride, 2·stride, …`` and always the last one (the model's output)."""
    if stride < 1:
        raise ValueError(f"layer stride must be at least 1, got {stride}")
    rows = list(range(0, num_rows, stride))
    return rows if rows[-1] == num_rows - 1 else rows + [num_rows - 1]


def position_range(seq_len: int, positions: tuple[int, int] | None) -> list[int]:
    """Positions ``start..stop-1`` of ``positions = (start, stop)`` (Python slice rules)."""
    chosen = list(range(seq_len))[slice(*positions)] if positions else list(range(seq_len))
    if not chosen:
        raise ValueError(f"no positions in {positions} for a sequence of {seq_len} tokens")
    return chosen


@dataclass
class HeatmapData:
    """What a trajectory heatmap shows, cell by cell (row ``i`` is layer ``rows[i]``).

    Attributes:
        rows: The layers shown, bottom to top (the last is the output).
        positions: The positions shown, left to right.
        values: The statistic, ``(len(rows), len(positions))``, ``nan`` where undefined.
        texts: The top-1 token label of each cell, same shape.
        stars: Whether the top-1 token is the true next token, same shape.
    """

    rows: list[int]
    positions: list[int]
    values: np.ndarray
    texts: np.ndarray
    stars: np.ndarray


def heatmap_data(
    traj: Trajectory,
    statistic: str | Statistic = "entropy",
    layer_stride: int = 1,
    positions: tuple[int, int] | None = None,
    max_chars: int = MAX_CHARS,
) -> HeatmapData:
    """Select and label the cells of a trajectory heatmap (see :func:`plot_trajectory`)."""
    rows = strided_layers(traj.num_layers + 1, layer_stride)
    cols = position_range(len(traj), positions)
    grid = np.ix_(rows, cols)
    top1 = top_tokens(traj).numpy()
    values = get_statistic(statistic).values(traj).numpy()[grid]
    texts = np.array([[traj.label(int(t), max_chars) for t in row] for row in top1[grid]])
    stars = top1[grid] == traj.targets.numpy()[cols][None, :]
    return HeatmapData(rows, cols, values, texts.reshape(values.shape), stars)


def color_norm(statistic: Statistic, values: Sequence[np.ndarray]) -> Normalize:
    """One colour scale for all panels: log from 1 for ranks, linear from 0 otherwise."""
    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in values])
    top = statistic.vmax or (float(finite.max()) if finite.size else 1.0)
    if statistic.log_scale:
        return LogNorm(vmin=1.0, vmax=max(top, 10.0))
    return Normalize(vmin=0.0, vmax=top if top > 0 else 1.0)


def draw_trajectory(ax: Axes, data: HeatmapData, statistic: Statistic, norm: Normalize,
                    traj: Trajectory) -> QuadMesh:
    """Draw one heatmap on ``ax``; returns its mesh (``get_array()`` holds the values)."""
    sns.heatmap(data.values, ax=ax, cmap=statistic.cmap, norm=norm, cbar=False,
                mask=~np.isfinite(data.values), linewidths=0.5, linecolor="white",
                xticklabels=False, yticklabels=False)
    mesh = ax.collections[0]
    mesh.set_gid("statistic")
    ax.set_ylim(0, len(data.rows))  # layer 0 at the bottom, the output on top
    ax.set_facecolor("0.9")  # undefined cells (no next token) stay grey
    _write_cells(ax, data, mesh)
    star_rows, star_cols = np.nonzero(data.stars)
    ax.scatter(star_cols + 0.88, star_rows + 0.78, marker="*", s=40, c=STAR_COLOR,
               edgecolors="black", linewidths=0.4, zorder=3, gid="stars")
    _label_axes(ax, data, traj)
    return mesh


def _write_cells(ax: Axes, data: HeatmapData, mesh: QuadMesh) -> None:
    colors = mesh.cmap(mesh.norm(np.ma.masked_invalid(data.values)))
    for (i, j), text in np.ndenumerate(data.texts):
        dark = np.isfinite(data.values[i, j]) and _luminance(colors[i, j]) < 0.45
        ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=CELL_FONT_SIZE,
                color="white" if dark else "black", parse_math=False, gid="top1")


def _luminance(rgba: np.ndarray) -> float:
    r, g, b = rgba[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _label_axes(ax: Axes, data: HeatmapData, traj: Trajectory) -> None:
    """Input tokens below the columns, true next tokens above, layer names on the left.

    Labels are plain texts (gids ``"input"``, ``"target"``, ``"layer"``), not tick labels:
    ticks cost a few milliseconds each, too slow for a widget redrawn on every change.
    """
    inputs, targets = traj.input_labels(MAX_CHARS + 3), traj.target_labels(MAX_CHARS + 3)
    columns = blended_transform_factory(ax.transData, ax.transAxes)
    for j, p in enumerate(data.positions):
        ax.text(j + 0.5, -0.02, inputs[p], transform=columns, rotation=60, ha="right",
                va="top", rotation_mode="anchor", parse_math=False, gid="input")
        ax.text(j + 0.5, 1.02, targets[p], transform=columns, rotation=60, ha="left",
                va="bottom", rotation_mode="anchor", parse_math=False, gid="target")
    rows = blended_transform_factory(ax.transAxes, ax.transData)
    names = traj.layer_names()
    for i, r in enumerate(data.rows):
        ax.text(-0.01, i + 0.5, names[r], transform=rows, ha="right", va="center",
                parse_math=False, gid="layer")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel("layer", labelpad=44)  # clears "output"
    ax.set_xlabel("input token", labelpad=LABEL_PAD)
    ax.text(0.5, 1.0, "true next token (★ = top-1 is right)", transform=offset_copy(
        ax.transAxes, fig=ax.figure, y=LABEL_PAD, units="points"), ha="center",
        va="bottom", parse_math=False, gid="target-label")


# Fixed margins in inches, sized for labels of at most MAX_CHARS + 3 characters. A fixed
# layout draws the figure once; constrained layout would draw it twice (too slow for widgets).
CELL = (0.62, 0.32)  # width, height of one cell
MARGINS = dict(left=0.95, right=1.25, bottom=1.3, top=1.5, gap=0.45)
MIN_PANEL_WIDTH = 2.2


def _heatmap_figure(n_rows: int, n_cols: int, panels: int) -> tuple[Figure, list[Axes], Axes]:
    """A figure with ``panels`` heatmap axes side by side and a colour-bar axes on the right."""
    m = MARGINS
    panel_w, panel_h = max(n_cols * CELL[0], MIN_PANEL_WIDTH), n_rows * CELL[1]
    width = m["left"] + panels * panel_w + (panels - 1) * m["gap"] + m["right"]
    height = m["bottom"] + panel_h + m["top"]
    fig = Figure(figsize=(width, height))
    axes = [
        fig.add_axes((
            (m["left"] + i * (panel_w + m["gap"])) / width, m["bottom"] / height,
            panel_w / width, panel_h / height,
        ))
        for i in range(panels)
    ]
    cbar_left = m["left"] + panels * panel_w + (panels - 1) * m["gap"] + 0.15
    cax = fig.add_axes((cbar_left / width, m["bottom"] / height, 0.15 / width,
                        panel_h / height))
    return fig, axes, cax


def plot_trajectory(
    traj: Trajectory,
    statistic: str | Statistic = "entropy",
    *,
    layer_stride: int = 1,
    positions: tuple[int, int] | None = None,
    title: str | None = None,
) -> Figure:
    """Heatmap of a trajectory: layers × positions, top-1 token in each cell.

    Args:
        traj: The trajectory to draw.
        statistic: Colour: ``"entropy"``, ``"cross_entropy"``, ``"kl"``,
            ``"max_probability"`` or ``"rank"`` (log scale); see
            :data:`lensbook.analysis.statistic.STATISTICS`.
        layer_stride: Show every ``layer_stride``-th layer; the output row is always shown.
        positions: ``(start, stop)`` positions to show (slice rules); all by default.
        title: Title; by default the lens label.

    Returns:
        The figure; ``fig.axes[0]`` is the heatmap, ``fig.axes[-1]`` the colour bar.
    """
    return plot_lens_comparison([traj], statistic, layer_stride=layer_stride,
                                positions=positions, titles=[title] if title else None)


def plot_lens_comparison(
    trajectories: Sequence[Trajectory],
    statistic: str | Statistic = "entropy",
    *,
    layer_stride: int = 1,
    positions: tuple[int, int] | None = None,
    titles: Sequence[str] | None = None,
) -> Figure:
    """Heatmaps of the same tokens through several lenses, side by side, one colour scale.

    Args:
        trajectories: E.g. ``[logit_traj, tuned_traj]`` for the same prompt.
        statistic: As in :func:`plot_trajectory`.
        layer_stride: As in :func:`plot_trajectory`.
        positions: As in :func:`plot_trajectory`.
        titles: Panel titles; by default each trajectory's lens label.

    Returns:
        The figure: one heatmap axes per trajectory, then the shared colour bar.
    """
    stat = get_statistic(statistic)
    datas = [heatmap_data(t, stat, layer_stride, positions) for t in trajectories]
    norm = color_norm(stat, [d.values for d in datas])
    n_rows, n_cols = datas[0].values.shape
    fig, axes, cax = _heatmap_figure(n_rows, n_cols, len(datas))
    for i, (ax, data, traj) in enumerate(zip(axes, datas, trajectories, strict=True)):
        mesh = draw_trajectory(ax, data, stat, norm, traj)
        ax.set_title(titles[i] if titles else traj.lens_label, pad=LABEL_PAD + 16)
        if i:  # panels share the layer axis: name it once
            ax.set_ylabel("")
            for text in ax.texts:
                text.set_visible(text.get_gid() != "layer")
    fig.colorbar(mesh, cax=cax, label=stat.label)
    return fig
