"""Figure sizes that fit a notebook: the width and font limits every plot function keeps.

Jupyter shows a returned figure as a PNG at the figure's dpi, matplotlib's
``figure.dpi`` (100; matplotlib-inline no longer overrides it), cropped to its
content (``bbox_inches="tight"``). JupyterLab and Colab scale a wider image down to
the notebook's content width, about 1,000 px at a 1,280-px-wide window, and the text
shrinks with it: Fig. 1 at 2,813 px showed its tokens at about 4 px. Measured in
JupyterLab 4.6 in Chromium at a 1,280-px-wide window with the file browser open (the
default layout; ``tests/test_browser.py``), an output image gets 848 px. So every
figure is at most :data:`MAX_WIDTH` inches wide, which is :data:`MAX_WIDTH_PX` pixels
inline and is shown unscaled there, and no text is smaller than :data:`MIN_FONT` points
(about 10 px). Figures with many panels or tokens wrap onto more rows instead of
growing wider.
"""

from __future__ import annotations

import math

DISPLAY_DPI = 100  # matplotlib's default figure.dpi: what Jupyter's inline PNGs use
MAX_WIDTH = 8.3  # inches; the tight crop can add a little, so inline stays <= MAX_WIDTH_PX
MAX_WIDTH_PX = 850  # JupyterLab's output width at a 1,280-px window (848 px measured)
MIN_FONT = 7.0  # points: 9.7 px at DISPLAY_DPI, the smallest text a reader should have to read


def panels_per_row(n: int, panel_width: float, margin: float, gap: float = 0.0) -> int:
    """How many panels of ``panel_width`` inches fit side by side (at least 1, at most n)."""
    fit = math.floor((MAX_WIDTH - margin + gap) / (panel_width + gap))
    return max(1, min(n, fit))


def balanced_chunks(n: int, most: int) -> list[range]:
    """``range(n)`` cut into as few chunks of at most ``most`` as possible, of equal size."""
    count = math.ceil(n / max(most, 1))
    size = math.ceil(n / count)
    return [range(start, min(start + size, n)) for start in range(0, n, size)]
