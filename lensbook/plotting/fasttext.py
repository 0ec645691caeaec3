"""Texts drawn from a bitmap cache: the heatmaps' many small labels, fast enough for widgets.

A heatmap of 20 positions × 7 layers has about 200 texts. Matplotlib lays out and
rasterises every glyph of every text on every draw (about 2 ms a text on a busy CPU),
which is most of an explorer's redraw. Token labels repeat ("␣the", "␣a"), and a widget
redraws the same labels many times, so :class:`CachedText` renders each distinct
(text, font, colour, dpi) once with Agg and afterwards pastes the bitmap.

It looks the same as a :class:`~matplotlib.text.Text` (Agg renders the bitmap), aligns
as one, and falls back to ``Text.draw`` for anything it does not cover: rotated or
multi-line texts, a background box, or a renderer other than Agg (PDF, SVG).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence

import numpy as np
from matplotlib import cbook
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import to_rgba
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text

PAD = 3  # pixels around the text box: glyph ink may overhang its advance box


@functools.lru_cache(maxsize=8192)
def text_sprite(text: str, prop: FontProperties, rgba: tuple, dpi: float
                ) -> tuple[np.ndarray, float, float, float]:
    """``text`` rendered by Agg: the RGBA bitmap and the text box's width, height, descent.

    The box is the one ``Text`` aligns (at least as tall as "lp"); the bitmap has
    :data:`PAD` pixels more on each side, and the baseline ``PAD + descent`` from its bottom.
    """
    probe = RendererAgg(1, 1, dpi)
    width, height, descent = probe.get_text_width_height_descent(text, prop, ismath=False)
    _, lp_height, lp_descent = probe.get_text_width_height_descent("lp", prop, ismath=False)
    height, descent = max(height, lp_height), max(descent, lp_descent)
    size = (math.ceil(width) + 2 * PAD, math.ceil(height) + 2 * PAD)
    renderer = RendererAgg(*size, dpi)
    gc = renderer.new_gc()
    gc.set_foreground(rgba, isRGBA=True)
    renderer.draw_text(gc, PAD, size[1] - PAD - descent, text, prop, 0)  # y counts down
    gc.restore()
    return np.asarray(renderer.buffer_rgba()).copy(), width, height, descent


class CachedText(Text):
    """A :class:`~matplotlib.text.Text` whose Agg rendering comes from :func:`text_sprite`."""

    def _cacheable(self, renderer) -> bool:
        return (type(renderer) is RendererAgg and self.get_rotation() == 0
                and "\n" not in self.get_text() and self.get_bbox_patch() is None
                and not self.get_path_effects())

    def draw(self, renderer) -> None:
        """Paste the cached bitmap, aligned as ``Text`` aligns; else draw as ``Text``."""
        if not self.get_visible() or not self.get_text():
            return
        if not self._cacheable(renderer):
            super().draw(renderer)
            return
        rgba = to_rgba(self.get_color(), self.get_alpha())
        image, width, height, descent = text_sprite(
            self.get_text(), self.get_fontproperties(), rgba, renderer.dpi)
        x, y = self.get_transform().transform(self.get_unitless_position())
        left = x - {"left": 0.0, "center": width / 2, "right": width}[self.get_ha()]
        bottom = y - {"bottom": 0.0, "baseline": descent, "center": height / 2,
                      "center_baseline": descent + (height - descent) / 2,
                      "top": height}[self.get_va()]
        gc = renderer.new_gc()
        gc.set_clip_rectangle(self.get_clip_box() if self.get_clip_on() else None)
        renderer.draw_image(gc, round(left) - PAD, round(bottom) - PAD, image[::-1])
        gc.restore()
        self.stale = False


def add_text(ax: Axes, x: float, y: float, text: str, **kwargs) -> CachedText:
    """``ax.text(x, y, text, **kwargs)``, drawn from the bitmap cache."""
    return add_texts(ax, [(x, y)], [text], **kwargs)[0]


def add_texts(ax: Axes, xy: Sequence[tuple[float, float]], texts: Sequence[str],
              colors: Sequence | None = None, **kwargs) -> list[CachedText]:
    """Many texts with the same properties (``kwargs``) but their own position and colour.

    The first is built as usual and the others copied from it: building a ``Text`` from
    keyword arguments costs about 1 ms, a widget's heatmap has hundreds. Each copy gets
    its own font properties and callbacks, so changing one later changes no other.
    """
    template = CachedText(0.0, 0.0, "", **kwargs)
    if "transform" not in kwargs:
        template.set_transform(ax.transData)
    template.set_clip_on(False)
    made = []
    for i, ((x, y), text) in enumerate(zip(xy, texts, strict=True)):
        artist = copy.copy(template)
        artist._x, artist._y, artist._text = x, y, text
        artist._fontproperties = template._fontproperties.copy()
        artist._callbacks = cbook.CallbackRegistry(signals=["pchanged"])
        if colors is not None:
            artist.set_color(colors[i])
        made.append(ax._add_text(artist))
    return made
