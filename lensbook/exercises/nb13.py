"""Checks for notebook 13 (the final block): the biggest gain, the model itself, a mismatch."""

from __future__ import annotations

import pandas as pd

from lensbook.analysis.final_block import WITH, WITHOUT, curves_of
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require

UNIT = "bits/byte"


def _ce(frame: pd.DataFrame, lens: str, variant: str) -> pd.Series:
    rows = curves_of(frame, "ce", UNIT)
    rows = rows[(rows["lens"] == lens) & (rows["variant"] == variant)]
    return rows.set_index("layer")["value"]


@exercise("Exercise 1")
def check_biggest_gain(layer: object, frame: pd.DataFrame) -> str:
    """``layer``: where keeping the last block lowers the logit lens's cross-entropy most."""
    gain = _ce(frame, "logit lens", WITHOUT) - _ce(frame, "logit lens", WITH)
    layer = inv.an_int(layer, "layer", int(gain.index.min()), int(gain.index.max()))
    best = int(gain.idxmax())
    require(layer == best, f"the last block lowers the logit lens's cross-entropy more at "
            f"layer {best} than at layer {layer} (cross-entropy without minus with, {UNIT})")
    return (f"layer {best}: the further the stream is from the last block, the more "
            "of the head's input that block still has to write")


@exercise("Exercise 2")
def check_last_layer_is_the_model(kl_last: object, frame: pd.DataFrame) -> str:
    """``kl_last``: KL(model ‖ logit lens through the last block) at layer ``L - 1``."""
    value = inv.a_float(kl_last, "kl_last")
    require(value >= -1e-6, f"a KL divergence is never negative, got {value:.3g}: is it "
            "KL(model ‖ lens) = Σ p (log p - log q), with log-probabilities, not logits?")
    L = int(frame.loc[frame["lens"] == "output", "layer"].max())
    nats = frame[(frame["unit"] == "nats/token") & (frame["metric"] == "kl")]
    without = nats[(nats["lens"] == "logit lens") & (nats["variant"] == WITHOUT)
                   & (nats["layer"] == L - 1)]["value"].item()
    require(value < 1e-4, f"{value:.3g} nats is not zero; decoding h_(L-1) *without* the "
            f"last block gives about {without:.3g} on the notebook's data: pass `replay` to "
            "`decode`, so that the stream goes through the block before the head")
    return ("at the last block's own input, the block and the head *are* the model: "
            "a check of the whole capture-and-replay machinery")


@exercise("Exercise 3")
def check_mismatch(mismatch: object, frame: pd.DataFrame) -> str:
    """``mismatch``: the two tuned lenses through the last block, per layer.

    Cross-entropy of the lens trained without the block minus that of the lens trained
    with it, both decoded through the block.
    """
    expected = (_ce(frame, "tuned lens (trained without)", WITH)
                - _ce(frame, "tuned lens (trained with)", WITH))
    mismatch = inv.a_series(mismatch, "mismatch", expected.index)
    inv.close(mismatch, expected, "mismatch", "cross-entropy through the last block of "
              "'tuned lens (trained without)' minus that of 'tuned lens (trained with)', "
              f"per layer, {UNIT}")
    return ("a translator learns what its decoder needs: the lens trained for the head "
            "alone is not the best one to read through the last block")
