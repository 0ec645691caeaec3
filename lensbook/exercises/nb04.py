"""Checks for notebook 04 (prediction depth): frequency cut-off, deepest token, code vs prose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lensbook.analysis.depth import TextDepth, depth_table, most_frequent, text_depths
from lensbook.core.lens import Lens
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require

LENS = "tuned lens"
MIN_COUNT = 5  # occurrences a token needs before its mean depth counts


def depth_gap(depths: Mapping[str, Sequence[TextDepth]], frequent: set[int]) -> float:
    """Mean tuned-lens depth of rare tokens minus that of frequent ones."""
    table = depth_table(depths, frequent)
    means = table[table.lens == LENS].groupby("group").depth.mean()
    return float(means["rare"] - means["frequent"])


@exercise("Exercise 1")
def check_gaps(gaps: object, depths: Mapping[str, Sequence[TextDepth]],
               ids: torch.Tensor) -> str:
    """``gaps``: ``{k: rare minus frequent mean depth}`` for ``k`` = 20 and 1000."""
    require(isinstance(gaps, dict), f"gaps must be a dict {{k: gap}}, got {inv.found(gaps)}")
    require({20, 1000} <= set(gaps), f"gaps needs the keys 20 and 1000, has {sorted(gaps)}")
    for k in (20, 1000):
        expected = depth_gap(depths, most_frequent(ids, k))
        inv.close(inv.a_float(gaps[k], f"gaps[{k}]"), expected, f"gaps[{k}]",
                  f"mean {LENS} depth of rare tokens minus that of frequent ones, with the "
                  f"{k} most frequent tokens counted as frequent", 1e-6)
    wider = 20 if gaps[20] > gaps[1000] else 1000
    return f"the gap is wider with the {wider} most frequent tokens counted as frequent"


@exercise("Exercise 2")
def check_deepest(token: object, table: pd.DataFrame, min_count: int = MIN_COUNT) -> str:
    """``token``: the predicted token id with the largest mean tuned-lens depth (≥ 5 times)."""
    rows = table[table.lens == LENS].groupby("token").depth.agg(["mean", "size"])
    rows = rows[rows["size"] >= min_count]
    token = inv.an_int(token, "the token id", 0, int(table.token.max()))
    require(token in rows.index, f"token {token} is predicted fewer than {min_count} times "
            f"under the {LENS} (or never): keep only tokens with at least {min_count} positions")
    best = int(rows["mean"].idxmax())
    require(rows.loc[token, "mean"] == rows.loc[best, "mean"], f"token {best} has a larger "
            f"mean depth than token {token}: group the {LENS}'s rows by token, take the mean "
            "depth, and pick the largest")
    return f"token {best} is, on average, decided last by the {LENS}"


@exercise("Exercise 3")
def check_code_vs_prose(code: object, prose: object, code_earlier: object,
                        model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                        lens: Lens) -> str:
    """``code_earlier``: whether the code text's mean depth is below the prose's."""
    code, prose = inv.a_string(code, "the code text"), inv.a_string(prose, "the prose text")
    require(any(word in code for word in ("def ", "return", "self")), "the code text should "
            "be Python: use def, return or self")
    require(not any(word in prose for word in ("def ", "return", "self.")), "the prose text "
            "should be plain English, without def, return or self.")
    code_earlier = inv.a_bool(code_earlier, "code_earlier")
    depths = text_depths(model, tokenizer, {LENS: lens}, [code, prose])[LENS]
    means = [float(d.depth.float().mean()) for d in depths]
    truth = means[0] < means[1]
    require(code_earlier == truth, f"under the {LENS}, the code's mean depth is "
            f"{'below' if truth else 'not below'} the prose's, so code_earlier must be {truth}")
    return f"{'code' if truth else 'prose'} is decided earlier on your two texts"
