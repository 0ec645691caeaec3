"""Line charts: one panel per metric, lens or case, layers (or steps) on the x axis."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lensbook.analysis.statistic import STATISTICS
from lensbook.analysis.tables import COLUMNS, PREFERRED_UNITS, pick_unit
from lensbook.plotting.layout import panels_per_row

COPY_LABELS = {
    "probability": "probability of the copied token",
    "cross_entropy": "cross-entropy of the copied token (nats)",
    "rank": "median rank of the copied token",
    "top1": "copy rate (top-1 is the copied token)",
    "gain": "repetition gain (nats)",
}


# Human names of the metrics in tidy tables (the statistics' come from their registry).
METRIC_TITLES = {
    "kl": "KL(output ‖ lens)",
    "ce": "cross-entropy to next token",
    "entropy": "entropy",
    "bias": "bias: KL(output marginal ‖ lens marginal)",
    "top1_agreement": "top-1 agrees with the output",
    "top1": "top-1 agrees with the output",
    "copy_rate": "copy rate: top-1 is the input token",
}


def metric_title(metric: str) -> str:
    """A human name for a metric id (``"cross_entropy"`` -> ``"cross-entropy to next token"``)."""
    if metric in METRIC_TITLES:
        return METRIC_TITLES[metric]
    return STATISTICS[metric].title if metric in STATISTICS else metric.replace("_", " ")


def line_panels(n: int, width: float = 3.6, margin: float = 0.9, height: float = 3.2,
                sharey: bool = False) -> tuple[Figure, list[Axes]]:
    """A figure with ``n`` panels of ``width`` inches, as many per row as fit the width limit.

    Panels wrap onto more rows rather than make the figure wider than
    :data:`lensbook.plotting.layout.MAX_WIDTH`; unused cells of the last row are removed.
    """
    cols = panels_per_row(n, width, margin)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols + margin, height * rows), layout="constrained")
    grid = list(fig.subplots(rows, cols, squeeze=False, sharey=sharey).ravel())
    for spare in grid[n:]:
        spare.remove()
    return fig, grid[:n]


def plot_layer_metrics(
    df: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    units: Sequence[str] = PREFERRED_UNITS,
) -> Figure:
    """One panel per metric, one line per lens, layers on the x axis.

    Args:
        df: Tidy table with columns ``lens, layer, metric, value, unit`` (what
            :func:`lensbook.analysis.evaluate.evaluate_lenses` returns); several rows per
            (lens, layer, metric, unit) are averaged.
        metrics: Which metrics to draw, in order; all by default.
        units: Preferred units: each panel shows its metric in the first of these that
            the table has (a metric is often given in both nats/token and bits/byte).

    Returns:
        The figure, one axes per metric (as many per row as fit the notebook), each titled
        with the metric's human name and unit and its y axis labelled with the unit.
    """
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"the table lacks columns {sorted(missing)}; it needs {COLUMNS}")
    metrics = list(metrics) if metrics is not None else list(dict.fromkeys(df["metric"]))
    fig, axes = line_panels(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        rows = df[df["metric"] == metric]
        if rows.empty:
            raise ValueError(f"no rows for metric {metric!r}")
        unit = pick_unit(rows, units)
        sns.lineplot(data=rows[rows["unit"] == unit], x="layer", y="value", hue="lens",
                     marker="o", errorbar=None, ax=ax)
        ax.set_ylabel(unit)
        ax.set_xlabel("layer (last = output)")
        ax.set_title(f"{metric_title(metric)} ({unit})", fontsize=10)
    return fig



def plot_models_by_layer(curves: pd.DataFrame, unit: str = "bits/byte", x: str = "depth",
                         metric: str = "cross-entropy",
                         authors: pd.DataFrame | None = None,
                         sizes: Sequence[str] | None = None) -> Figure:
    """One panel per lens, one line per model: the paper's Figs. 5 and 14.

    Args:
        curves: Columns ``model, lens, value`` and ``x`` (what
            :func:`lensbook.analysis.compare.layer_curves` returns).
        unit: Unit of ``value``, for the y label.
        x: ``"depth"`` (fraction of the model's layers; 1 is the output) or ``"layer"``.
        metric: What ``value`` is, for the y label.
        authors: The paper's own curves of the same models, drawn dashed in each model's
            colour (:func:`lensbook.analysis.authors.authors_curves`; same columns).
        sizes: The models from smallest to largest (a size series, Fig. 5): the legend
            follows this order and the colours grade from light to dark with size. By
            default (model families, Fig. 14) models keep their order and distinct colours.

    Returns:
        The figure; the panels share their y axis so that the lenses compare directly.
    """
    lenses = list(dict.fromkeys(curves["lens"]))
    models = list(sizes) if sizes is not None else list(dict.fromkeys(curves["model"]))
    fig, axes = line_panels(len(lenses), sharey=True)
    palette = (sns.color_palette("crest", n_colors=len(models)) if sizes is not None
               else sns.color_palette(n_colors=len(models)))
    colours = dict(zip(models, palette, strict=True))
    for ax, lens in zip(axes, lenses, strict=True):
        sns.lineplot(data=curves[curves["lens"] == lens], x=x, y="value", hue="model",
                     hue_order=models, palette=colours, marker="o", errorbar=None, ax=ax,
                     legend=ax is axes[-1])
        if sizes is not None and ax.get_legend() is not None:
            ax.get_legend().set_title("model (small to large)")
        if authors is not None:
            _draw_authors(ax, authors[authors["lens"] == lens], x, colours)
        ax.set_title(lens)
        ax.set_xlabel("depth (fraction of layers)" if x == "depth" else x)
        ax.set_ylabel(f"{metric} ({unit})")
    return fig


def plot_authors_curves(authors: pd.DataFrame, ours: pd.DataFrame | None = None,
                        sizes: Sequence[str] | None = None, x: str = "depth") -> Figure:
    """The paper's own curves, over ours where both measured the same models.

    Args:
        authors: :func:`lensbook.analysis.authors.authors_curves` of the paper's models.
        ours: lensbook's curves (:func:`lensbook.analysis.compare.layer_curves`). When
            they share a model with ``authors`` (an online profile), the figure is ours
            with the authors' curves of those models dashed in the same colours; when
            not (the embedded models offline), the figure is the authors' curves alone,
            drawn like ours, to sit beside our figure.
        sizes: A size series, smallest first, of the models in the figure (see
            :func:`plot_models_by_layer`); ``None`` for model families.
        x: ``"depth"`` or ``"layer"``.

    Returns:
        The figure; its title says whose curves it shows.
    """
    shared = ours is not None and ours["model"].isin(authors["model"]).any()
    if shared:
        fig = plot_models_by_layer(ours, x=x, authors=authors, sizes=sizes)
        fig.suptitle("ours (solid) and the authors' (dashed, arXiv v1 data)", fontsize=10)
    else:
        short = {m: m.rsplit("/", 1)[-1] for m in authors["model"]}  # "pythia-70m-deduped"
        fig = plot_models_by_layer(authors.replace({"model": short}), x=x,
                                   sizes=None if sizes is None else [short[m] for m in sizes])
        fig.suptitle("the authors' curves (arXiv v1 data)", fontsize=10)
        legend_ax = fig.axes[-1]
        if legend_ax.get_legend() is not None:  # loss falls with depth: upper right is free
            sns.move_legend(legend_ax, "upper right", fontsize="small")
    return fig


def plot_final_block(curves: pd.DataFrame, model_loss: float | None = None, *,
                     unit: str = "bits/byte", title: str | None = None) -> Figure:
    """The paper's Fig. 4: each lens per layer, decoded without and with the last block.

    Args:
        curves: Columns ``lens, variant, layer, value`` (:func:`lensbook.analysis.
            final_block.curves_of` for ours, :func:`lensbook.analysis.authors.
            authors_curves` for the paper's BLOOM-560M).
        model_loss: The model's own cross-entropy, drawn as a dotted line.
        unit: Unit of ``value``.
        title: The figure's title (whose numbers, which model).

    Returns:
        Two panels sharing a y axis, "without final block" first; a log y axis when the
        values span more than a factor of 10 (the logit lens's first layers).
    """
    variants = [v for v in ("without final block", "with final block")
                if v in set(curves["variant"])]
    fig, axes = line_panels(len(variants), sharey=True)
    lenses = list(dict.fromkeys(curves["lens"]))
    colours = dict(zip(lenses, sns.color_palette(n_colors=len(lenses)), strict=True))
    for ax, variant in zip(axes, variants, strict=True):
        sns.lineplot(data=curves[curves["variant"] == variant], x="layer", y="value",
                     hue="lens", hue_order=lenses, palette=colours, marker="o",
                     errorbar=None, ax=ax, legend=ax is axes[-1])
        if model_loss is not None:
            ax.axhline(model_loss, color="grey", ls=":", lw=1.2, label="model's own loss")
        if ax.get_legend() is not None:
            ax.legend(fontsize="small")
        ax.set_title(variant)
        ax.set_ylabel(f"cross-entropy ({unit})")
    values = curves["value"]
    if values.min() > 0 and values.max() / values.min() > 10:
        axes[0].set_yscale("log")
    if title is not None:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_depth_by_learned(table: pd.DataFrame, rho: pd.Series) -> Figure:
    """The paper's Table 2 as a figure: mean prediction depth by the step an example is learned.

    Args:
        table: :func:`lensbook.analysis.learned.learned_table`: columns ``learned`` and
            one prediction-depth column per lens.
        rho: Spearman ρ per lens (:func:`lensbook.analysis.learned.depth_vs_learned`),
            shown in the legend.

    Returns:
        One axes: a line per lens, the checkpoints' training steps on the x axis, with
        the standard error of each mean as a band.
    """
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    long = table.melt(id_vars=["learned"], value_vars=list(rho.index), var_name="lens",
                      value_name="depth")
    long["lens"] = long["lens"].map({name: f"{name} (ρ = {value:.2f})"
                                     for name, value in rho.items()})
    sns.lineplot(data=long, x="learned", y="depth", hue="lens", marker="o",
                 errorbar="se", ax=ax)
    ax.set_xlabel("training step at which the example is learned")
    ax.set_ylabel("mean prediction depth (layer)")
    ax.set_title("prediction depth against the step an example is learned")
    return fig


def _draw_authors(ax: Axes, authors: pd.DataFrame, x: str, colours: dict) -> None:
    """The paper's curves of the models in ``colours``: dashed, labelled as the authors'."""
    for model, rows in authors.groupby("model", sort=False):
        if model in colours:
            ax.plot(rows[x], rows["value"], ls="--", lw=1.2, color=colours[model],
                    label=f"{model} (authors)")
    if authors["model"].isin(colours).any() and ax.get_legend() is not None:
        ax.legend(fontsize="small")


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
    layers = history["layer"].nunique()
    if layers > 8:  # a deep model's legend in columns, so it fits the figure's height
        sns.move_legend(ax, "upper right", ncol=-(-layers // 8), fontsize="small",
                        title="layer")
    if log_scale:
        ax.set_yscale("log")
    ax.set_ylabel(f"KL(output ‖ lens) ({unit})")
    ax.set_xlabel("training step")
    ax.set_title("tuned lens training loss per layer")
    return fig


def plot_copy_curves(
    summary: pd.DataFrame,
    metric: str = "probability",
    panel: str | None = "case",
    threshold: float | None = None,
) -> Figure:
    """One line per lens (and occurrence), layers on the x axis, one panel per case.

    Args:
        summary: :func:`lensbook.analysis.copying.summarize` (columns ``lens, occurrence, layer``
            and the statistics) or :func:`lensbook.analysis.copying.repetition_gain` (``lens,
            layer, gain``), optionally with a ``panel`` column.
        metric: ``"probability"``, ``"cross_entropy"``, ``"rank"`` (log scale),
            ``"top1"`` or ``"gain"``.
        panel: Column that splits the panels (``"case"``); ignored when absent.
        threshold: Draw a dotted horizontal line here (the copy-layer criterion, or 0).

    Returns:
        The figure; colour is the lens and, when there is an ``occurrence`` column, a
        dashed line the first occurrence and solid lines the later ones.
    """
    if metric not in COPY_LABELS:
        raise ValueError(f"unknown metric {metric!r}: choose one of {sorted(COPY_LABELS)}")
    groups = list(dict.fromkeys(summary[panel])) if panel in summary.columns else [None]
    fig, axes = line_panels(len(groups), sharey=True)
    for ax, group in zip(axes, groups, strict=True):
        rows = summary if group is None else summary[summary[panel] == group]
        sns.lineplot(data=rows, x="layer", y=metric, hue="lens", marker="o", errorbar=None,
                     ax=ax, **_occurrence_styles(rows))
        if threshold is not None:
            ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
        ax.set_yscale("log" if metric == "rank" else "linear")
        ax.set(xlabel="layer (last = output)", ylabel=COPY_LABELS[metric], title=group or "")
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


def plot_alignment_by_layer(summary: pd.DataFrame) -> Figure:
    """Stimulus–response alignment per layer, one line per lens (the paper's Fig. 9).

    Args:
        summary: :func:`lensbook.analysis.stimulus_response.alignment_by_layer`: index
            ``(layer, lens)``, columns ``mean`` and ``stderr``.

    Returns:
        The figure: mean Aitchison similarity with ±1 standard error bars; the last
        layer is the last block's output, where every lens is the model's head.
    """
    fig, (ax,) = line_panels(1, width=5.6, margin=0.4)
    for lens, rows in summary.reset_index().groupby("lens", sort=False):
        ax.errorbar(rows["layer"], rows["mean"], yerr=rows["stderr"], marker="o",
                    capsize=3, label=lens)
    ax.axhline(0, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="layer perturbed (last = the head's input)", ylabel="Aitchison similarity",
           title="stimulus–response alignment")
    ax.legend()
    return fig


def plot_fewshot_accuracy(accuracy: pd.DataFrame) -> Figure:
    """Few-shot accuracy per layer with true and false demonstrations (the paper's Fig. 11).

    Args:
        accuracy: :func:`lensbook.analysis.fewshot.accuracy_by_layer` (columns ``lens,
            layer, demos, accuracy, chance``).

    Returns:
        One panel per lens: a solid line for true demonstrations, a dashed one for false
        ones, and chance as a dotted grey line.
    """
    lenses = list(dict.fromkeys(accuracy["lens"]))
    fig, axes = line_panels(len(lenses), sharey=True)
    for ax, lens in zip(axes, lenses, strict=True):
        rows = accuracy[accuracy["lens"] == lens]
        sns.lineplot(data=rows, x="layer", y="accuracy", hue="demos", style="demos",
                     hue_order=["true", "false"], style_order=["true", "false"],
                     dashes={"true": "", "false": (3, 2)}, marker="o", errorbar=None, ax=ax,
                     legend=ax is axes[-1])
        ax.axhline(rows["chance"].iloc[0], color="grey", linestyle=":", linewidth=1,
                   label="chance")
        ax.set(xlabel="layer (last = output)", ylabel="accuracy among the labels",
               title=lens, ylim=(0, 1.02))
    axes[-1].legend(title="demonstrations", fontsize="small")
    return fig
