"""Checks for notebook 10 (iterative inference): gradient at the output, half a block, echo."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from lensbook.analysis import iterative
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require

NO_DIRECTION = (0.35, 0.65)  # a share of negative cosines in here prefers no direction


@exercise("Exercise 1")
def check_output_alignment(summary: object, changes: object, model: PreTrainedModel,
                           ids: torch.Tensor) -> str:
    """``summary``: ``alignment_summary`` at the blocks' outputs; ``changes``: any direction."""
    summary = inv.a_frame(summary, "the summary", ["median", "negative"])
    cells = iterative.update_alignment(model, ids, batch_size=2, at="output")
    expected = iterative.alignment_summary(cells)
    require(len(summary) == len(expected), f"one row per block ({len(expected)}), got "
            f"{len(summary)}")
    inv.close(summary["negative"], expected["negative"], "the share of negative cosines",
              "update_alignment(model, ids, at='output') summarized by alignment_summary", 1e-3)
    changes = inv.a_bool(changes, "changes")
    truth = bool((~expected["negative"].between(*NO_DIRECTION)).any())
    require(changes == truth, f"at the outputs, {'some' if truth else 'no'} block's share "
            f"of negative cosines leaves {NO_DIRECTION}, so changes must be {truth}")
    return "the alignment at the blocks' outputs: compare it with the inputs' (summary)"


@exercise("Exercise 2")
def check_half_update(half: object, ratio: object, model: PreTrainedModel,
                      ids: torch.Tensor) -> str:
    """``half``: ``layer_deletion(..., keep=0.5)``; ``ratio``: its increase over deletion's."""
    half = inv.a_frame(half, "half", ["layer", "loss", "increase"])
    require(half.attrs.get("keep") == 0.5, "half must keep half of each block's update: "
            f"layer_deletion(model, ids, keep=0.5); it kept {half.attrs.get('keep')}")
    full = iterative.layer_deletion(model, ids, batch_size=2)  # 50k-token logits: small batches
    require(abs(half.attrs["intact"] - full.attrs["intact"]) < 1e-4, "half was computed on "
            "other sequences than ids: the intact losses differ")
    expected = (half.set_index("layer").increase / full.set_index("layer").increase)
    ratio = inv.a_series(ratio, "ratio", expected.index)
    inv.close(ratio, expected, "ratio", "increase with half the update divided by the "
              "increase with the block deleted", 1e-3)
    return "the cost of halving each block's update, as a share of deleting it"


@exercise("Exercise 3")
def check_tuned_echo(curves: object, echo_end: object) -> str:
    """``curves``: tuned-lens input-copy rates; ``echo_end``: first layer at the base rate."""
    curves = inv.a_frame(curves, "the curves", ["lens", "layer", "layers", "value"])
    rows = curves[curves.lens == "tuned lens"].sort_values("layer")
    require(not rows.empty, "the curves have no 'tuned lens' rows: pass "
            "{'tuned lens': lensbook.load_published(model)}")
    L = int(rows.layers.iloc[0])
    base = float(rows[rows.layer == L].value.iloc[0])
    lens_rows = rows[rows.layer < L]
    at_base = lens_rows[lens_rows.value <= base].layer
    truth = int(at_base.iloc[0]) if len(at_base) else L
    echo_end = inv.an_int(echo_end, "echo_end", 0, L)
    require(echo_end == truth, f"the first layer whose echo rate is at most the output's "
            f"(the base rate) is {truth}, not {echo_end}")
    # Echo and base rate are both a few percent: the layer itself may move with the CPU.
    return "echo_end is the first layer whose echo is at most the base rate (L if none is)"

