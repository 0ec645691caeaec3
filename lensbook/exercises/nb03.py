"""Checks for notebook 03 (evaluating lenses): KL ratio, a smaller sample, over-confidence."""

from __future__ import annotations

import pandas as pd

from lensbook.analysis.evaluate import pivot
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require


@exercise("Exercise 1")
def check_largest_ratio(layer: object, kl: pd.DataFrame) -> str:
    """``layer``: where the logit lens's KL divided by the tuned lens's is largest."""
    ratio = kl["logit lens"] / kl["tuned lens"]
    layer = inv.an_int(layer, "the layer", int(ratio.index.min()), int(ratio.index.max()))
    best = int(ratio.idxmax())
    require(layer == best, f"the ratio at layer {layer} is smaller than at layer {best}; "
            f"divide the logit lens's KL by the tuned lens's, per layer, then take the largest")
    return f"layer {best}: there the tuned lens improves most on the logit lens, as a factor"


@exercise("Exercise 2")
def check_small_eval(small: object, results: pd.DataFrame) -> str:
    """``small``: ``evaluate_lenses`` on fewer chunks, with bits-per-byte rows."""
    small = inv.a_frame(small, "small", ["lens", "layer", "metric", "value", "unit"])
    require(set(small.lens) == set(results.lens), f"evaluate the same lenses "
            f"{sorted(set(results.lens))}, got {sorted(set(small.lens))}")
    require((small.unit == "bits/byte").any(), "small has no bits/byte rows: pass the chunks "
            "as TokenChunks (they know how many bytes they came from), or give "
            "bits_per_byte_factor=test_chunks.bits_per_byte_factor with bare ids")
    same = small.merge(results, on=["lens", "layer", "metric", "unit"])
    require(not (same.value_x == same.value_y).all(), "small equals results exactly: evaluate "
            "on fewer chunks than test_chunks (a quarter of them)")
    kl = pivot(small, "kl", "bits/byte")
    holds = bool((kl["tuned lens"] < kl["logit lens"]).all())
    claim = "holds" if holds else "does not hold"
    return f"bits/byte rows present; on the smaller sample, 'tuned below logit' {claim}"


@exercise("Exercise 3")
def check_overconfident(overconfident: object, results: pd.DataFrame) -> str:
    """``overconfident``: per layer of the logit lens, entropy below cross-entropy."""
    logit = results[(results.lens == "logit lens") & (results.unit == "nats/token")]
    per_layer = logit.pivot_table(index="layer", columns="metric", values="value")
    layers = per_layer.index  # the model's output is the lens "output", not listed here
    expected = per_layer.entropy < per_layer.ce
    overconfident = inv.a_series(overconfident, "overconfident", layers)
    require(overconfident.dtype == bool, f"overconfident must hold True/False per layer, got "
            f"dtype {overconfident.dtype}")
    wrong = [int(layer) for layer in layers if overconfident[layer] != expected[layer]]
    require(not wrong, f"layer {wrong[:1]}: a lens is over-confident where its "
            "entropy (how sure it is) is below its cross-entropy (how surprised the true "
            "token leaves it), in nats per token")
    return f"the logit lens is over-confident at {int(expected.sum())} of {len(layers)} layers"
