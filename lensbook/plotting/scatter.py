"""Scatter plots: one point per item, two measured quantities against each other."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from lensbook.plotting.lines import line_panels


def plot_influence(table: pd.DataFrame, rho: Mapping[str, float] | None = None) -> Figure:
    """Causal basis extraction (the paper's Figs. 8/20): lens vs model influence.

    Args:
        table: :func:`lensbook.analysis.causal_basis.influence_table` rows of one or
            more lenses (columns ``lens, layer, direction, lens_influence,
            model_influence``, in nats/token).
        rho: Spearman ρ per lens, shown in each panel's title
            (:func:`lensbook.analysis.causal_basis.influence_correlation`).

    Returns:
        The figure: one panel per lens, log-log axes, each point a direction coloured
        by its rank (darker = found earlier, more influential on the lens).
    """
    lenses = list(dict.fromkeys(table["lens"]))
    fig, axes = line_panels(len(lenses), width=4.2, margin=0.6)
    for ax, lens in zip(axes, lenses, strict=True):
        rows = table[table["lens"] == lens]
        sns.scatterplot(data=rows, x="lens_influence", y="model_influence", hue="direction",
                        palette="viridis_r", legend=False, ax=ax)
        ax.set(xscale="log", yscale="log", xlabel="influence on the lens (KL, nats/token)",
               ylabel="influence on the model (KL, nats/token)")
        title = f"{lens}, layer {rows['layer'].iloc[0]}"
        ax.set_title(title if rho is None else f"{title}: Spearman ρ = {rho[lens]:.2f}")
    return fig
