"""Where the panels of a trajectory heatmap go: side by side when they fit, else stacked.

Sizes are fixed in inches (a cell is :data:`CELL`), so a token label always has the
same room and font. Panels go side by side while the figure stays within
:data:`lensbook.plotting.layout.MAX_WIDTH`; otherwise each lens gets its own row, and a
prompt too long for one row is cut into chunks of positions, each chunk shown for every
lens before the next (so the lenses' views of the same tokens stay next to each other).
A fixed layout draws once; constrained layout would draw twice (too slow for widgets).
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lensbook.plotting.layout import MAX_WIDTH, balanced_chunks

CELL = (0.5, 0.3)  # inches: width fits a 7-character label at 8 pt, height one line
LEFT = 0.75  # layer names ("output") and the "layer" label
RIGHT = 0.85  # colour bar, its ticks and its label
ABOVE = 0.5  # panel title and the row of true next tokens
BELOW = 0.32  # the row of input tokens
GAP = 0.3  # between panels side by side
FOOT = 0.42  # the legend line under the panels
MIN_PANEL = 1.6  # inches: room for a title over a short prompt


@dataclass
class HeatmapGrid:
    """The panels of one heatmap figure.

    Attributes:
        panels: For each axes, the trajectory it shows and its positions (indices into
            the shown positions).
        size: Figure width and height in inches.
        rects: Each panel's ``(left, bottom, width, height)`` in figure fractions.
        colorbar: The colour bar's rectangle, in figure fractions.
    """

    panels: list[tuple[int, range]]
    size: tuple[float, float]
    rects: list[tuple[float, float, float, float]]
    colorbar: tuple[float, float, float, float]

    def figure(self) -> tuple[Figure, list[Axes], Axes]:
        """A new figure with the panels' axes and the colour bar's axes."""
        fig = Figure(figsize=self.size)
        return fig, [fig.add_axes(r) for r in self.rects], fig.add_axes(self.colorbar)


def heatmap_grid(n_rows: int, n_cols: int, n_panels: int) -> HeatmapGrid:
    """Lay out ``n_panels`` heatmaps of ``n_rows × n_cols`` cells within the width limit."""
    panel_w = max(n_cols * CELL[0], MIN_PANEL)
    side_by_side = LEFT + n_panels * panel_w + (n_panels - 1) * GAP + RIGHT
    if side_by_side <= MAX_WIDTH:
        chunks, per_row = [range(n_cols)], n_panels
    else:
        most = int((MAX_WIDTH - LEFT - RIGHT) // CELL[0])
        chunks, per_row = balanced_chunks(n_cols, most), 1
        panel_w = max(len(chunks[0]) * CELL[0], MIN_PANEL)
    panels = [(k, cols) for cols in chunks for k in range(n_panels)]
    n_lines = len(panels) // per_row
    panel_h = n_rows * CELL[1]
    line_h = ABOVE + panel_h + BELOW
    width = LEFT + per_row * panel_w + (per_row - 1) * GAP + RIGHT
    height = n_lines * line_h + FOOT
    rects = []
    for i, (_, cols) in enumerate(panels):
        line, slot = divmod(i, per_row)
        left = LEFT + slot * (panel_w + GAP)
        bottom = height - (line + 1) * line_h + BELOW
        rects.append((left / width, bottom / height, len(cols) * CELL[0] / width,
                      panel_h / height))
    top_cells = height - ABOVE
    bottom_cells = FOOT + BELOW
    bar = (width - RIGHT + 0.15, bottom_cells, 0.13, min(top_cells - bottom_cells, 4.0))
    bar = (bar[0], top_cells - bar[3], bar[2], bar[3])
    colorbar = (bar[0] / width, bar[1] / height, bar[2] / width, bar[3] / height)
    return HeatmapGrid(panels, (width, height), rects, colorbar)
