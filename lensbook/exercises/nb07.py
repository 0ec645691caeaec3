"""Checks for notebook 07 (induction and copying): frequent tokens, four repeats, context."""

from __future__ import annotations

import pandas as pd
import torch

from lensbook.analysis.copying import copy_layers
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require

SUMMARY = ["lens", "occurrence", "layer", "cross_entropy", "top1"]
LENS = "tuned lens"


def output_ce(summary: pd.DataFrame, occurrence: str, lens: str = LENS) -> float:
    """Mean cross-entropy of the model's output (the last layer) at ``occurrence``."""
    rows = summary[(summary.lens == lens) & (summary.occurrence == occurrence)]
    return float(rows[rows.layer == rows.layer.max()].cross_entropy.mean())


@exercise("Exercise 1")
def check_frequent(summary: object, copies: object, threshold: float) -> str:
    """``summary``: the frequent-token repeats summarized; ``copies``: any lens copies."""
    summary = inv.a_frame(summary, "the summary", SUMMARY)
    require({"first", "second"} <= set(summary.occurrence), "the summary needs the first and "
            "second occurrences: summarize the copy_table of repeated blocks")
    copies = inv.a_bool(copies, "copies")
    layers = copy_layers(summary, threshold)
    truth = bool(layers.notna().any())
    require(copies == truth, f"at threshold {threshold}, {'some' if truth else 'no'} lens "
            f"reaches a copy layer on the second occurrence, so copies must be {truth}")
    return f"on frequent-token repeats, lensbook-tiny {'copies' if truth else 'does not copy'}"


@exercise("Exercise 2")
def check_fourth(summary: object, fourth_easier: object) -> str:
    """``fourth_easier``: the output's loss on the fourth occurrence is below the second's."""
    summary = inv.a_frame(summary, "the summary", SUMMARY)
    require("fourth" in set(summary.occurrence), "the summary has no fourth occurrence: "
            "repeat each block four times (random_repeats(pool, length, 4, ...))")
    fourth_easier = inv.a_bool(fourth_easier, "fourth_easier")
    truth = output_ce(summary, "fourth") < output_ce(summary, "second")
    require(fourth_easier == truth, f"under the {LENS}, the output's cross-entropy on the fourth "
            f"occurrence is {'below' if truth else 'not below'} the second's, so "
            f"fourth_easier must be {truth}")
    return f"the fourth occurrence is {'easier' if truth else 'not easier'} than the second"


@exercise("Exercise 3")
def check_context(after_other: object, copying_helps: object, summary: pd.DataFrame) -> str:
    """``after_other``: per layer, the block's loss after another text; ``copying_helps``."""
    require(isinstance(after_other, torch.Tensor), f"after_other must be a tensor of one mean "
            f"cross-entropy per layer, got {inv.found(after_other)}")
    layers = summary.layer.nunique()
    require(tuple(after_other.shape) == (layers,), f"after_other needs one value per layer "
            f"({layers}), got shape {tuple(after_other.shape)}")
    require(bool((after_other > 0).all() & after_other.isfinite().all()), "cross-entropies are "
            "positive and finite")
    copying_helps = inv.a_bool(copying_helps, "copying_helps")
    text = summary[summary.case == "held-out text"]
    truth = output_ce(text, "second") < float(after_other[-1])
    require(copying_helps == truth, f"at the output, the second occurrence's loss is "
            f"{'below' if truth else 'not below'} the loss after another text, so "
            f"copying_helps must be {truth}")
    return f"the repeat {'beats' if truth else 'does not beat'} merely more context"


@exercise("Exercise 4")
def check_threshold(threshold: object, summary: pd.DataFrame, step: float = 0.05) -> str:
    """``threshold``: within ``step`` of the largest at which held-out text has a copy layer."""
    threshold = inv.a_float(threshold, "the threshold")
    require(0 < threshold <= 1, f"a copy rate threshold lies in (0, 1], got {threshold}")
    text = summary[summary.case == "held-out text"]
    at = copy_layers(text, threshold).xs(LENS, level="lens").iloc[0]
    require(not pd.isna(at), f"at threshold {threshold} the {LENS} has no copy layer on "
            "held-out text: lower it")
    above = copy_layers(text, threshold + step).xs(LENS, level="lens").iloc[0]
    require(pd.isna(above), f"at {threshold} + {step} the {LENS} still has a copy layer: "
            "the largest threshold is higher (it is the highest copy rate of any layer)")
    return f"held-out text has a copy layer ({int(at)}) only at thresholds this low"
