"""How well trajectories reveal prompt injections: AUROC per task, lens and detector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def plot_detection(rows: Sequence[dict], chance: float = 0.5) -> Figure:
    """AUROC with its confidence interval for every task, one panel per detector.

    Within a panel, each task has one marker per feature set (lens), offset side by
    side, with the bootstrap interval as an error bar; a dashed line marks chance.

    Args:
        rows: :func:`lensbook.anomaly.detection_table`: dicts with ``task, lens, detector,
            auroc, low, high``.
        chance: Where to draw the chance line.

    Returns:
        The figure; ``fig.axes[i]`` is the panel of the ``i``-th detector, with one
        error-bar container per lens.
    """
    detectors = list(dict.fromkeys(r["detector"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lenses = list(dict.fromkeys(r["lens"] for r in rows))
    fig = Figure(figsize=(3.2 + 1.1 * len(tasks) * len(detectors), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(detectors), sharey=True))
    for ax, detector in zip(axes, detectors, strict=True):
        for i, lens in enumerate(lenses):
            _draw_lens(ax, [r for r in rows if r["detector"] == detector and r["lens"] == lens],
                       tasks, offset=(i - (len(lenses) - 1) / 2) * 0.22, label=lens)
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(tasks)), tasks)
        ax.set_ylim(min(0.3, min(r["low"] for r in rows) - 0.05), 1.02)
        ax.set_title(detector)
        ax.set_xlabel("task")
    axes[0].set_ylabel("AUROC (0.5 = chance)")
    fig.legend(*axes[0].get_legend_handles_labels(), title="features", fontsize=8,
               loc="outside right upper")
    return fig


def _draw_lens(ax, rows: Sequence[dict], tasks: list[str], offset: float, label: str) -> None:
    """One lens's AUROCs as markers with asymmetric error bars, at ``task + offset``."""
    by_task = {r["task"]: r for r in rows}
    present = [t for t in tasks if t in by_task]
    x = np.array([tasks.index(t) for t in present]) + offset
    value = np.array([by_task[t]["auroc"] for t in present])
    low = np.array([by_task[t]["low"] for t in present])
    high = np.array([by_task[t]["high"] for t in present])
    ax.errorbar(x, value, yerr=[value - low, high - value], fmt="o", capsize=3, label=label)
