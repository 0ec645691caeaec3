"""Training curves of a tuned lens: the per-layer loss over the steps of a run."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure


def plot_training_history(history: pd.DataFrame, *, log_scale: bool = True) -> Figure:
    """One line per layer: KL(output ‖ lens) against the training step.

    Args:
        history: ``TrainHistory.to_frame()``: columns ``step, layer, kl`` (nats/token),
            and ``kl_bits_per_byte`` when the data's bytes were known (then used).
        log_scale: Log y axis; the first layers start orders of magnitude higher.

    Returns:
        The figure with one axes.
    """
    column, unit = ("kl_bits_per_byte", "bits/byte") if "kl_bits_per_byte" in history \
        else ("kl", "nats/token")
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    sns.lineplot(data=history, x="step", y=column, hue="layer", palette="viridis",
                 legend="full", ax=ax)
    if log_scale:
        ax.set_yscale("log")
    ax.set_ylabel(f"KL(output ‖ lens) ({unit})")
    ax.set_xlabel("training step")
    ax.set_title("tuned lens training loss per layer")
    return fig
