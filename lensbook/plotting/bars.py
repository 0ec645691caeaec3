"""Bar, box and interval charts: top-k predictions, depth by group, AUROC per task, updates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from lensbook.analysis.statistic import top_k
from lensbook.core.trajectory import Trajectory
from lensbook.plotting.layout import MAX_WIDTH, panels_per_row

BAR_COLOR = "tab:blue"
TARGET_COLOR = "tab:orange"  # the true next token, when it is among the top k


def plot_top_k(traj: Trajectory, layer: int, position: int, k: int = 10) -> Figure:
    """Horizontal bars: the ``k`` most likely next tokens at one layer and position.

    Args:
        traj: The trajectory.
        layer: Row ``0..L`` (``L`` or ``-1`` is the model's output).
        position: Position in the sequence (negative counts from the end).
        k: How many tokens to show.

    Returns:
        The figure; its axes hold one bar per token, most likely on top, the true next
        token in orange.
    """
    probs, ids = top_k(traj, k)
    probs, ids = probs[layer, position].numpy(), ids[layer, position].tolist()
    target = int(traj.targets[position])
    labels = [traj.label(i, max_chars=16) for i in ids]
    fig = Figure(figsize=(5.5, 0.3 * len(ids) + 1.5), layout="constrained")
    ax = fig.add_subplot()
    colors = [TARGET_COLOR if i == target else BAR_COLOR for i in ids]
    bars = ax.barh(np.arange(len(ids)), probs, color=colors, gid="top_k")
    ax.bar_label(bars, [f"{p:.3f}" for p in probs], padding=2, fontsize=8)
    ax.set_yticks(np.arange(len(ids)), labels, parse_math=False)
    ax.invert_yaxis()  # most likely on top
    ax.set_xlim(0, min(1.0, 1.2 * float(probs.max())))
    ax.set_xlabel("probability")
    row = traj.layer_names()[layer]
    after = traj.input_labels(16)[position]
    ax.set_title(f"{traj.lens_label}, layer {row}: next token after '{after}'",
                 parse_math=False, fontsize=10)
    return fig


def plot_depth_by_group(table: pd.DataFrame) -> Figure:
    """Mean prediction depth per lens and token group, with 95% intervals.

    Args:
        table: :func:`lensbook.analysis.depth.depth_table`: columns ``lens, group, depth``.

    Returns:
        The figure with one bar axes (layers on the y axis).
    """
    fig = Figure(figsize=(5.6, 3.6), layout="constrained")
    ax = fig.subplots()
    sns.barplot(data=table, x="group", y="depth", hue="lens", errorbar=("ci", 95), ax=ax,
                order=sorted(table["group"].unique()))
    ax.set_ylabel("prediction depth (layer)")
    ax.set_xlabel("predicted token")
    ax.set_title("where the final prediction is decided")
    return fig


def plot_detection(rows: Sequence[dict], chance: float = 0.5) -> Figure:
    """AUROC with its confidence interval for every task, one panel per detector.

    Within a panel, each task has one marker per feature set (lens), offset side by
    side, with the bootstrap interval as an error bar; a dashed line marks chance.

    Args:
        rows: :func:`lensbook.analysis.detectors.detection_table`: dicts with ``task, lens,
            detector, auroc, low, high``.
        chance: Where to draw the chance line.

    Returns:
        The figure; ``fig.axes[i]`` is the panel of the ``i``-th detector, with one
        error-bar container per lens.
    """
    detectors = list(dict.fromkeys(r["detector"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lenses = list(dict.fromkeys(r["lens"] for r in rows))
    panel = min(1.1 * len(tasks) + 0.6, MAX_WIDTH - 2.6)  # 2.6 in: y label and legend
    cols = panels_per_row(len(detectors), panel, margin=2.6)
    rows_ = -(-len(detectors) // cols)
    fig = Figure(figsize=(2.6 + panel * cols, 3.4 * rows_), layout="constrained")
    grid = np.ravel(fig.subplots(rows_, cols, sharey=True, squeeze=False))
    for spare in grid[len(detectors):]:
        spare.remove()
    axes = grid[:len(detectors)]
    for ax, detector in zip(axes, detectors, strict=True):
        for i, lens in enumerate(lenses):
            _draw_lens(ax, [r for r in rows if r["detector"] == detector and r["lens"] == lens],
                       tasks, offset=(i - (len(lenses) - 1) / 2) * 0.22, label=lens)
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(tasks)), tasks)
        ax.set_ylim(min(0.3, min(r["low"] for r in rows) - 0.05), 1.02)
        ax.set_title(detector)
        ax.set_xlabel("task")
        ax.set_ylabel("AUROC (0.5 = chance)")
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


def plot_update_alignment(cells: pd.DataFrame, deletion: pd.DataFrame) -> Figure:
    """The paper's Fig. 19: block updates against the loss gradient, and layer deletion.

    Args:
        cells: :func:`lensbook.analysis.iterative.update_alignment`'s rows
            (``layer, cosine``).
        deletion: :func:`lensbook.analysis.iterative.layer_deletion`'s rows
            (``layer, increase``).

    Returns:
        Two panels: the cosine's distribution per block (below 0 means the block's update
        points downhill on the loss), and the loss increase when the block is skipped.
    """
    fig = Figure(figsize=(8.2, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    sns.boxplot(data=cells, x="layer", y="cosine", color="#9ecae1", showfliers=False,
                ax=left)
    left.axhline(0.0, color="black", lw=0.8)
    left.set(xlabel="block", ylabel="cos(update, ∇ loss)",
             title="update vs loss gradient (< 0: downhill)")
    right.bar(deletion["layer"], deletion["increase"], color="#3182bd")
    right.set(xlabel="block deleted", ylabel="loss increase (nats/token)",
              title="deleting one block")
    return fig
