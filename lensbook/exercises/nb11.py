"""Checks for notebook 11 (a lens on a fine-tune): worst layer, another slice, CE vs KL."""

from __future__ import annotations

import pandas as pd

from lensbook.analysis.evaluate import pivot
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require

UNIT = "bits/byte"


def penalty_of(frame: pd.DataFrame, metric: str) -> pd.Series:
    """``metric`` of the transferred lens minus that of the re-fit, per layer (no output row)."""
    table = pivot(frame, metric, UNIT)
    table = table[[c for c in ("transfer", "re-fit")]].dropna()
    return table["transfer"] - table["re-fit"]


@exercise("Exercise 1")
def check_worst_layer(layer: object, penalty: pd.Series, gap: pd.Series) -> str:
    """``layer``: the layer with the largest transfer penalty."""
    layer = inv.an_int(layer, "the layer", int(penalty.index.min()), int(penalty.index.max()))
    worst = int(penalty.idxmax())
    require(layer == worst, f"layer {worst} pays a larger penalty than layer {layer}")
    same = "also" if worst == int(gap.idxmax()) else "not"
    return f"layer {worst} pays the most; it is {same} where the logit lens's gap is largest"


@exercise("Exercise 2")
def check_other_slice(frame: object, penalty: object) -> str:
    """``frame``: the three lenses on another slice; ``penalty``: transfer minus re-fit KL."""
    frame = inv.a_frame(frame, "the frame", ["lens", "layer", "metric", "value", "unit"])
    require({"transfer", "re-fit"} <= set(frame.lens), "evaluate the lenses 'transfer' and "
            f"'re-fit' (the dict lenses), got {sorted(set(frame.lens))}")
    require((frame.unit == UNIT).any(), "no bits/byte rows: pass the chunks as TokenChunks")
    expected = penalty_of(frame, "kl")
    penalty = inv.a_series(penalty, "penalty", expected.index)
    inv.close(penalty, expected, "penalty", f"KL of 'transfer' minus KL of 're-fit', {UNIT}")
    # Penalties of a few hundredths: which layer is largest can move with the CPU's kernels.
    return "the transfer penalty on another slice, layer by layer: compare it with `penalty`"


@exercise("Exercise 3")
def check_ce_penalty(ce_penalty: object, frame: pd.DataFrame) -> str:
    """``ce_penalty``: cross-entropy of 'transfer' minus 're-fit', per layer, bits/byte."""
    expected = penalty_of(frame, "ce")
    ce_penalty = inv.a_series(ce_penalty, "ce_penalty", expected.index)
    inv.close(ce_penalty, expected, "ce_penalty", f"cross-entropy of 'transfer' minus that "
              f"of 're-fit', per layer, {UNIT}, without the output row")
    return "the cross-entropy penalty, layer by layer: compare it with the KL penalty"
