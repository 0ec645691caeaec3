"""Copying by layer: how each lens rates the token that repeats next (induction)."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

LABELS = {
    "probability": "probability of the copied token",
    "cross_entropy": "cross-entropy of the copied token (nats)",
    "rank": "median rank of the copied token",
    "top1": "copy rate (top-1 is the copied token)",
    "gain": "repetition gain (nats)",
}


def plot_copy_curves(
    summary: pd.DataFrame,
    metric: str = "probability",
    panel: str | None = "case",
    threshold: float | None = None,
) -> Figure:
    """One line per lens (and occurrence), layers on the x axis, one panel per case.

    Args:
        summary: :func:`lensbook.copying.summarize` (columns ``lens, occurrence, layer``
            and the statistics) or :func:`lensbook.copying.repetition_gain` (``lens,
            layer, gain``), optionally with a ``panel`` column.
        metric: ``"probability"``, ``"cross_entropy"``, ``"rank"`` (log scale),
            ``"top1"`` or ``"gain"``.
        panel: Column that splits the panels (``"case"``); ignored when absent.
        threshold: Draw a dotted horizontal line here (the copy-layer criterion, or 0).

    Returns:
        The figure; colour is the lens and, when there is an ``occurrence`` column, a
        dashed line the first occurrence and solid lines the later ones.
    """
    if metric not in LABELS:
        raise ValueError(f"unknown metric {metric!r}: choose one of {sorted(LABELS)}")
    groups = list(dict.fromkeys(summary[panel])) if panel in summary.columns else [None]
    fig = Figure(figsize=(4.4 * len(groups) + 1.4, 3.6), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False, sharey=True)[0]
    for ax, group in zip(axes, groups, strict=True):
        rows = summary if group is None else summary[summary[panel] == group]
        sns.lineplot(data=rows, x="layer", y=metric, hue="lens", marker="o", errorbar=None,
                     ax=ax, **_occurrence_styles(rows))
        if threshold is not None:
            ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
        ax.set_yscale("log" if metric == "rank" else "linear")
        ax.set(xlabel="layer (last = output)", ylabel=LABELS[metric], title=group or "")
    for ax in axes[:-1]:
        ax.get_legend().remove()  # the same legend in every panel: keep the last one
    return fig


def _occurrence_styles(rows: pd.DataFrame) -> dict:
    """Line styles by occurrence: dashed for the first, solid for the others."""
    if "occurrence" not in rows.columns:
        return {}
    occurrences = list(dict.fromkeys(rows["occurrence"]))
    dashes = {o: (3, 2) if o == "first" else "" for o in occurrences}
    return {"style": "occurrence", "style_order": occurrences, "dashes": dashes}
