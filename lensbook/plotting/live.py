"""A live view of training: the per-layer loss figure, redrawn in place while a lens trains.

Pass a :class:`LiveTrainingPlot` as ``on_step`` to :func:`lensbook.train_lens`. It draws
:func:`~lensbook.plotting.lines.plot_training_history` (bits per byte when the data
knows its bytes, as in the notebooks' text and evaluation, else nats per token) into one
output of the notebook and replaces that output as training goes. Drawing a figure takes
a few hundred milliseconds, so it redraws at most every ``every_s`` seconds, and always
after the first and the last step: what stays in the notebook is the whole run.

Example:
    >>> live = LiveTrainingPlot(config.steps)  # doctest: +SKIP
    >>> lens, history = train_lens(model, chunks, config, on_step=live)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from lensbook.plotting.lines import plot_training_history

if TYPE_CHECKING:
    from lensbook.training.history import TrainHistory

#: Seconds between redraws: often enough to watch, rare enough to cost under 10% of a
#: CPU step of the quick preset (a redraw takes about 0.2 s).
EVERY_S = 3.0


def notebook_display(fig: Figure) -> Any:
    """Show ``fig`` in the notebook's output and return a handle that can replace it."""
    from IPython.display import display

    return display(fig, display_id=True)


class LiveTrainingPlot:
    """The training loss per layer, redrawn in place every few seconds: an ``on_step``.

    Args:
        steps: The run's number of steps (``config.steps``): the last one is always drawn.
        every_s: At most one redraw per this many seconds between the first and last step.
        show: Shows a figure and returns a handle with ``update(fig)``; the default
            displays it in the notebook's output (``IPython.display`` with a display id).
        clock: Seconds as a float (tests pass a fake clock).

    Attributes:
        figure: The last figure drawn (None before the first step).
        redraws: How many times the figure was drawn.
    """

    def __init__(self, steps: int, every_s: float = EVERY_S,
                 show: Callable[[Figure], Any] = notebook_display,
                 clock: Callable[[], float] = time.monotonic):
        self.steps, self.every_s, self.show, self.clock = steps, every_s, show, clock
        self.figure: Figure | None = None
        self.redraws = 0
        self._handle = None
        self._drawn_at = float("-inf")

    def __call__(self, step: int, history: TrainHistory) -> None:
        """Redraw if this is the first or last step, or ``every_s`` passed since the last."""
        due = self.clock() - self._drawn_at >= self.every_s
        if self._handle is None or step >= self.steps or due:
            self.draw(history)

    def draw(self, history: TrainHistory) -> Figure:
        """Draw ``history`` now, replacing the previous figure in the output."""
        self.figure = plot_training_history(history.to_frame())
        ax = self.figure.axes[0]
        ax.set_title(f"{ax.get_title()}: step {len(history)} of {self.steps}")
        if self._handle is None:
            self._handle = self.show(self.figure)
        else:
            self._handle.update(self.figure)
        self.redraws += 1
        self._drawn_at = self.clock()
        return self.figure
