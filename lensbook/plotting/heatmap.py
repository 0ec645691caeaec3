"""The trajectory heatmap: layers × positions, the top-1 token in each cell.

It follows nostalgebraist's logit-lens plots: layers bottom to top (the model's
output last), positions left to right, the top-1 token written in each cell, the
colour a chosen statistic, and a star where the top-1 token is the true next token.
The input tokens are written under the columns and the true next tokens over them,
horizontally; a line under the figure explains the marks that appear in it (★, ␣, byte
escapes, cut labels, grey cells). Wide prompts and several lenses wrap onto more rows
(:mod:`~lensbook.plotting.heatmap_layout`) so the figure fits a notebook, and every
panel shares one colour scale (:mod:`~lensbook.plotting.colour`).

Tests and widgets can read what is drawn: :func:`heatmap_data` returns the cells'
values, texts and stars, and the figure's artists carry gids: the mesh
``"statistic"``, the cell texts ``"top1"``, the star markers ``"stars"``, the input
and next-token labels ``"input"`` and ``"target"``, the row names ``"layer"``, the
legend line ``"legend"``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from lensbook.analysis.statistic import Statistic, get_statistic, top_tokens
from lensbook.core.trajectory import Trajectory
from lensbook.plotting.colour import color_norm, extend
from lensbook.plotting.fasttext import CachedText, add_text, add_texts
from lensbook.plotting.heatmap_layout import heatmap_grid

MAX_CHARS = 7  # longer token labels are cut with "…" so that a label fits its cell
FONT_SIZE = 8  # cell texts, token labels and layer names: 11 px at 100 dpi
STAR_COLOR = "gold"
UNDEFINED = "0.85"  # grey: cells without a value (the last position has no next token)
BYTE_ESCAPE = re.compile(r"\\x[0-9a-f]{2}")


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

    def columns(self, cols: range) -> HeatmapData:
        """The same cells restricted to columns ``cols`` (indices into ``positions``)."""
        pick = list(cols)
        return replace(self, positions=[self.positions[j] for j in pick],
                       values=self.values[:, pick], texts=self.texts[:, pick],
                       stars=self.stars[:, pick])


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


def draw_trajectory(ax: Axes, data: HeatmapData, statistic: Statistic, norm: Normalize,
                    traj: Trajectory) -> QuadMesh:
    """Draw one heatmap on ``ax``; returns its mesh (``get_array()`` holds the values)."""
    mesh = ax.pcolormesh(np.ma.masked_invalid(data.values), cmap=statistic.cmap, norm=norm,
                         edgecolors="white", linewidth=0.5, gid="statistic")
    ax.set_xlim(0, len(data.positions))
    ax.set_ylim(0, len(data.rows))  # layer 0 at the bottom, the output on top
    ax.set_facecolor(UNDEFINED)
    _write_cells(ax, data, mesh)
    star_rows, star_cols = np.nonzero(data.stars)
    ax.scatter(star_cols + 0.88, star_rows + 0.78, marker="*", s=40, c=STAR_COLOR,
               edgecolors="black", linewidths=0.4, zorder=3, gid="stars")
    _label_axes(ax, data, traj)
    return mesh


def _write_cells(ax: Axes, data: HeatmapData, mesh: QuadMesh) -> None:
    colors = mesh.cmap(mesh.norm(np.ma.masked_invalid(data.values)))
    dark = [np.isfinite(data.values[i, j]) and _luminance(colors[i, j]) < 0.45
            for i, j in np.ndindex(data.texts.shape)]
    add_texts(ax, [(j + 0.5, i + 0.5) for i, j in np.ndindex(data.texts.shape)],
              list(data.texts.ravel()), ["white" if d else "black" for d in dark],
              ha="center", va="center", fontsize=FONT_SIZE, parse_math=False, gid="top1")


def _luminance(rgba: np.ndarray) -> float:
    r, g, b = rgba[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _label_axes(ax: Axes, data: HeatmapData, traj: Trajectory) -> None:
    """Input tokens under the columns, true next tokens over them, layer names on the left.

    Labels are plain texts (gids ``"input"``, ``"target"``, ``"layer"``), not tick labels:
    ticks cost a few milliseconds each, too slow for a widget redrawn on every change.
    """
    inputs, targets = traj.input_labels(MAX_CHARS), traj.target_labels(MAX_CHARS)
    n = len(data.rows)
    font = dict(fontsize=FONT_SIZE, parse_math=False)
    columns = [j + 0.5 for j in range(len(data.positions))]
    add_texts(ax, [(x, -0.5) for x in columns], [inputs[p] for p in data.positions],
              ha="center", va="center", gid="input", **font)
    add_texts(ax, [(x, n + 0.5) for x in columns], [targets[p] for p in data.positions],
              ha="center", va="center", gid="target", **font)
    rows = blended_transform_factory(ax.transAxes, ax.transData)
    names = traj.layer_names()
    add_texts(ax, [(-0.02, i + 0.5) for i in range(n)], [names[r] for r in data.rows],
              transform=rows, ha="right", va="center", gid="layer", **font)
    for y, name in [(-0.5, "input"), (n + 0.5, "next")]:
        add_text(ax, -0.02, y, name, transform=rows, ha="right", va="center", style="italic",
                 color="0.35", gid="row-label", **font)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel("layer", labelpad=34, fontsize=9)


def legend_line(datas: Sequence[HeatmapData], labels: Sequence[str] = ()) -> str:
    """What the marks in these heatmaps mean, only those that appear (the figure's caption).

    ``labels`` are the input and next-token labels shown with the cells.
    """
    inputs = " ".join([*(str(t) for d in datas for t in d.texts.ravel()), *labels])
    parts = ["rows: layers (output on top); input: the token at each position; "
             "next: the true next token"]
    if any(d.stars.any() for d in datas):
        parts.append("★ top-1 = true next token")
    if "␣" in inputs:
        parts.append("␣ a space")
    if BYTE_ESCAPE.search(inputs):
        parts.append("\\x1a etc.: one byte of a multi-byte character")
    if "…" in inputs:
        parts.append("… label cut")
    if any(not np.isfinite(d.values).all() for d in datas):
        parts.append("grey: no value (no next token)")
    return " · ".join(parts)


def plot_trajectory(
    traj: Trajectory,
    statistic: str | Statistic = "entropy",
    *,
    layer_stride: int = 1,
    positions: tuple[int, int] | None = None,
    title: str | None = None,
    fit: str = "fixed",
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
        fit: Colour scale: ``"fixed"``, the statistic's own range, the same for every lens
            and prompt; or ``"data"``, this figure's values
            (:func:`lensbook.plotting.colour.color_norm`).

    Returns:
        The figure; ``fig.axes[0]`` is the heatmap (more axes when a long prompt wraps),
        ``fig.axes[-1]`` the colour bar.
    """
    return plot_lens_comparison([traj], statistic, layer_stride=layer_stride,
                                positions=positions, titles=[title] if title else None,
                                fit=fit)


def plot_lens_comparison(
    trajectories: Sequence[Trajectory],
    statistic: str | Statistic = "entropy",
    *,
    layer_stride: int = 1,
    positions: tuple[int, int] | None = None,
    titles: Sequence[str] | None = None,
    fit: str = "fixed",
) -> Figure:
    """Heatmaps of the same tokens through several lenses on one colour scale.

    Side by side when they fit the notebook's width, else one above the other; a long
    prompt is cut into chunks of positions, each shown for every lens in turn.

    Args:
        trajectories: E.g. ``[logit_traj, tuned_traj]`` for the same prompt.
        statistic: As in :func:`plot_trajectory`.
        layer_stride: As in :func:`plot_trajectory`.
        positions: As in :func:`plot_trajectory`.
        titles: Panel titles; by default each trajectory's lens label.
        fit: As in :func:`plot_trajectory`; one scale for all panels either way.

    Returns:
        The figure: the heatmap axes (for each chunk of positions, one per trajectory),
        then the shared colour bar.
    """
    stat = get_statistic(statistic)
    datas = [heatmap_data(t, stat, layer_stride, positions) for t in trajectories]
    values = [d.values for d in datas]
    norm = color_norm(stat, values, trajectories[0].log_probs.shape[-1], fit)
    grid = heatmap_grid(*datas[0].values.shape, len(datas))
    fig, axes, cax = grid.figure()
    chunked = len(grid.panels) > len(datas)
    for ax, (k, cols) in zip(axes, grid.panels, strict=True):
        data = datas[k].columns(cols)
        mesh = draw_trajectory(ax, data, stat, norm, trajectories[k])
        title = titles[k] if titles else trajectories[k].lens_label
        if chunked:
            title += f", positions {data.positions[0]}–{data.positions[-1]}"
        ax.set_title(title, fontsize=10, pad=FONT_SIZE * 2.2)
        if ax.get_position().x0 > axes[0].get_position().x0 + 1e-6:
            _hide_layer_names(ax)  # panels side by side share the layer axis
    bar = fig.colorbar(mesh, cax=cax, extend=extend(norm, values))
    bar.set_label(stat.label, fontsize=9)
    bar.ax.tick_params(labelsize=FONT_SIZE)
    shown = datas[0].positions
    labels = [trajectories[0].input_labels(MAX_CHARS)[p] for p in shown] + [
        trajectories[0].target_labels(MAX_CHARS)[p] for p in shown]
    _write_legend(fig, legend_line(datas, labels))
    return fig


def _write_legend(fig: Figure, line: str) -> None:
    """The legend line under the panels, wrapped by characters (``wrap=True`` is slow)."""
    chars = int(fig.get_figwidth() * 72 / (FONT_SIZE * 0.56))
    for i, part in enumerate(reversed(textwrap.wrap(line, chars))):
        fig.add_artist(CachedText(0.1 / fig.get_figwidth(), (0.06 + 0.15 * i) / fig.get_figheight(),
                                  part, transform=fig.transFigure, fontsize=FONT_SIZE,
                                  color="0.25", parse_math=False, gid="legend"))


def _hide_layer_names(ax: Axes) -> None:
    ax.set_ylabel("")
    for text in ax.texts:
        text.set_visible(text.get_gid() not in ("layer", "row-label"))
