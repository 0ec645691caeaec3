"""Interactive explorers of trajectories, built from ipywidgets and lensbook figures.

One call builds each; display the result (the last expression of a cell)::

    lensbook.widgets.explorer(model, tokenizer, {"logit lens": logit, "tuned lens": tuned})
    lensbook.widgets.top_k_explorer(model, tokenizer, {"tuned lens": tuned})

Figures are drawn with matplotlib's Agg renderer and shown in an ``Image`` widget,
so the explorers need only the core widgets that JupyterLab, the classic notebook,
Binder and Colab all ship (on Colab, first run
``google.colab.output.enable_custom_widget_manager()``); no ipympl.

Each explorer *is* its container widget, with the callback logic in ``update()``
and the current ``trajectory``, ``figure`` and ``png`` as attributes, so it can be
driven and checked without a browser.

Colours keep one fixed scale per statistic (:mod:`lensbook.plotting.colour`), so the
same colour means the same number for every lens and prompt; the "fit colours" box
rescales to the figure shown instead. A prompt edit redraws in well under 200 ms on the
embedded model (``benchmarks/widget_latency.py``): the heatmap's labels come from a
bitmap cache, and the figure is drawn at :data:`DPI` without a tight crop.
"""

from __future__ import annotations

import contextlib
import html
import io
from collections.abc import Callable, Iterator, Mapping

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from transformers import PreTrainedModel

from lensbook.analysis.statistic import STATISTICS
from lensbook.core.errors import LensbookError
from lensbook.core.lens import LogitLens
from lensbook.core.run import trajectory
from lensbook.core.trajectory import Trajectory
from lensbook.plotting import plot_top_k, plot_trajectory

DEFAULT_PROMPT = "The for statement is used to iterate over the items of a list"
DPI = 90  # sharp enough on screen, and fast: rendering is most of an update's time
MAX_POSITIONS = 13  # a new prompt shows its last 13 tokens: one row at the notebook's width
WIDE = widgets.Layout(width="95%")


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, rendered with Agg."""
    buffer = io.BytesIO()
    # Light compression: a third of the encoding time, a slightly larger PNG.
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the thread count.

    One short prompt gains nothing from intra-op threads, and where the cores are busy
    (a shared Colab or Binder machine, a notebook training in another tab) the threads
    wait for each other: measured 1.4 s against 0.12 s per prompt edit at a load of 5 on
    2 cores (``benchmarks/widget_latency.py``).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def error_html(err: Exception) -> str:
    """An error as the status line shows it (red; the type named unless lensbook's own)."""
    text = str(err) if isinstance(err, (LensbookError, ValueError)) else (
        f"{type(err).__name__}: {err}")
    return f"<span style='color:#b00020'>{html.escape(text)}</span>"


class PromptRunner:
    """The prompt box and lens selector, and the trajectory they define.

    Args:
        model: The causal LM.
        tokenizer: Its tokenizer.
        lenses: Named lenses to choose from; by default the logit lens alone.
        prompt: The first prompt.
    """

    def __init__(self, model: PreTrainedModel, tokenizer, lenses: Mapping | None, prompt: str):
        self.model, self.tokenizer = model, tokenizer
        self.lenses = dict(lenses) if lenses else {"logit lens": LogitLens.from_model(model)}
        self.prompt = widgets.Text(value=prompt, description="prompt", layout=WIDE,
                                   continuous_update=False)  # recompute on Enter, not per key
        self.lens = widgets.Dropdown(options=list(self.lenses), description="lens")
        self._cache: tuple[tuple[str, str], Trajectory] | None = None

    @property
    def num_points(self) -> int:
        """Rows before the output: the most read points of any of the lenses."""
        return max(lens.num_points for lens in self.lenses.values())

    def current(self) -> tuple[Trajectory, bool]:
        """The trajectory of the current prompt and lens, and whether it is new.

        Raises:
            ValueError: For an empty prompt or one longer than the model's context.
        """
        key = (self.prompt.value, self.lens.value)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], False
        traj = trajectory(self.model, self.tokenizer, self.lenses[self.lens.value], key[0])
        traj.lens_label = self.lens.value  # the name the user gave, e.g. "tuned lens (pile)"
        self._cache = (key, traj)
        return traj, True


class _Explorer(widgets.VBox):
    """Shared plumbing: status line, image, and recomputing on any control's change."""

    def _setup(self, runner: PromptRunner, controls: list[widgets.Widget],
               draw: Callable[[Trajectory], Figure],
               sync: Callable[[Trajectory], None]) -> None:
        """Wire ``controls`` to :meth:`update`.

        ``update`` calls ``sync`` on each new trajectory (to fit sliders to its length)
        and ``draw`` every time.
        """
        self.runner = runner
        self._draw, self._sync_controls = draw, sync
        self.status = widgets.HTML()
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.trajectory: Trajectory | None = None
        self.figure: Figure | None = None
        self.png = b""
        self.updates = 0  # how many figures have been drawn
        self._syncing = False
        for control in [runner.prompt, runner.lens, *controls]:
            control.observe(self._on_change, names="value")

    def _on_change(self, _change: dict) -> None:
        if not self._syncing:
            self.update()

    def update(self) -> None:
        """Recompute the trajectory if the prompt or lens changed, then redraw.

        Errors (an empty, too long or un-tokenisable prompt) are shown in the status line
        and leave the last figure in place: a callback's exception would otherwise land
        in the notebook's log, out of the reader's sight.
        """
        try:
            with one_thread():
                self._recompute_and_draw()
        except Exception as err:  # any error becomes the status line
            self.status.value = error_html(err)

    def _recompute_and_draw(self) -> None:
        traj, new = self.runner.current()
        self.trajectory = traj
        if new:
            self._syncing = True  # resetting sliders must not trigger nested updates
            try:
                self._sync_controls(traj)
            finally:
                self._syncing = False
        self.figure = self._draw(traj)
        self.png = figure_png(self.figure)
        self.image.value = self.png
        self.updates += 1
        self.status.value = f"<code>{len(traj)} tokens · update {self.updates}</code>"


class TrajectoryExplorer(_Explorer):
    """Trajectory heatmap with prompt, lens, statistic, layer-stride and token-range controls.

    Args:
        model: The causal LM.
        tokenizer: Its tokenizer.
        lenses: Named lenses for the lens selector; by default the logit lens alone.
        prompt: The first prompt.
        statistic: The first colour statistic (a key of
            ``lensbook.analysis.statistic.STATISTICS``).
        fit_colours: Start with the colour scale fitted to each figure instead of the
            statistic's fixed scale (the same for every lens and prompt).
    """

    def __init__(self, model: PreTrainedModel, tokenizer, lenses: Mapping | None = None,
                 prompt: str = DEFAULT_PROMPT, statistic: str = "entropy",
                 fit_colours: bool = False):
        super().__init__()
        runner = PromptRunner(model, tokenizer, lenses, prompt)
        self.statistic = widgets.Dropdown(
            options=[(s.label, s.name) for s in STATISTICS.values()], value=statistic,
            description="colour")
        self.stride = widgets.IntSlider(value=1, min=1, max=max(runner.num_points, 1),
                                        description="layer stride")
        self.positions = widgets.IntRangeSlider(value=(0, 1), min=0, max=1,
                                                description="tokens", layout=WIDE)
        self.fit = widgets.Checkbox(value=fit_colours, description="fit colours to this figure",
                                    indent=False)
        self._setup(runner, [self.statistic, self.stride, self.positions, self.fit],
                    self._heatmap, self._fit_positions)
        self.children = [runner.prompt, widgets.HBox([runner.lens, self.statistic, self.stride]),
                         widgets.HBox([self.positions, self.fit]), self.status, self.image]
        self.update()

    def _fit_positions(self, traj: Trajectory) -> None:
        # Widen before narrowing so that the value always fits the bounds.
        self.positions.max = max(self.positions.max, len(traj))
        self.positions.value = (max(0, len(traj) - MAX_POSITIONS), len(traj))
        self.positions.max = len(traj)

    def _heatmap(self, traj: Trajectory) -> Figure:
        start, stop = self.positions.value
        start = min(start, len(traj) - 1)
        span = (start, max(stop, start + 1))  # at least one token, even for an empty range
        return plot_trajectory(traj, self.statistic.value, layer_stride=self.stride.value,
                               positions=span, fit="data" if self.fit.value else "fixed")


class TopKExplorer(_Explorer):
    """Top-k next-token predictions at one position, with a slider over layers.

    Args:
        model: The causal LM.
        tokenizer: Its tokenizer.
        lenses: Named lenses for the lens selector; by default the logit lens alone.
        prompt: The first prompt.
        k: How many predictions to show.
    """

    def __init__(self, model: PreTrainedModel, tokenizer, lenses: Mapping | None = None,
                 prompt: str = DEFAULT_PROMPT, k: int = 10):
        super().__init__()
        runner = PromptRunner(model, tokenizer, lenses, prompt)
        self.k = k
        rows = runner.num_points
        self.layer = widgets.IntSlider(value=rows, min=0, max=rows,
                                       description="layer")
        self.position = widgets.Dropdown(options=[("0", 0)], value=0, description="position")
        self._setup(runner, [self.layer, self.position], self._bars, self._fit_positions)
        self.children = [runner.prompt, widgets.HBox([runner.lens, self.position]), self.layer,
                         self.status, self.image]
        self.update()

    def _fit_positions(self, traj: Trajectory) -> None:
        labels = traj.input_labels(24)
        self.position.options = [(f"{i}: {label}", i) for i, label in enumerate(labels)]
        self.position.value = len(traj) - 1  # the last token: what comes next?

    def _bars(self, traj: Trajectory) -> Figure:
        return plot_top_k(traj, self.layer.value, self.position.value, self.k)


def explorer(model: PreTrainedModel, tokenizer, lenses: Mapping | None = None,
             prompt: str = DEFAULT_PROMPT, statistic: str = "entropy",
             fit_colours: bool = False) -> TrajectoryExplorer:
    """Build a :class:`TrajectoryExplorer` (a widget: display it)."""
    return TrajectoryExplorer(model, tokenizer, lenses, prompt, statistic, fit_colours)


def top_k_explorer(model: PreTrainedModel, tokenizer, lenses: Mapping | None = None,
                   prompt: str = DEFAULT_PROMPT, k: int = 10) -> TopKExplorer:
    """Build a :class:`TopKExplorer` (a widget: display it)."""
    return TopKExplorer(model, tokenizer, lenses, prompt, k)
