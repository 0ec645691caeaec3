"""Checks for notebook 05 (prompt injection): last position, token counts, one layer at a time."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require

Features = Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]]
STATISTICS = 3  # statistics per layer and position in prompt_features


def last_position(x: np.ndarray, layers: int, positions: int) -> np.ndarray:
    """The columns of the last position (columns are ordered layer, position, statistic)."""
    return x.reshape(len(x), layers, positions, STATISTICS)[:, :, -1].reshape(len(x), -1)


@exercise("Exercise 1")
def check_last_position(last: object, features: Features, positions: int, layers: int) -> str:
    """``last``: ``features`` of the lenses with only the last position's columns kept."""
    require(isinstance(last, Mapping), f"expected a dict like features (task -> lens -> "
            f"(clean, injected)), got {inv.found(last)}")
    require(set(last) == set(features), f"keep every task {sorted(features)}, got {sorted(last)}")
    for task, by_lens in last.items():
        for lens in ("tuned lens", "logit lens"):
            require(lens in by_lens, f"last[{task!r}] lacks {lens!r}")
            for name, got, full in zip(("clean", "injected"), by_lens[lens],
                                       features[task][lens], strict=True):
                want = last_position(full, layers, positions)
                require(np.shape(got) == want.shape, f"last[{task!r}][{lens!r}] ({name}) must "
                        f"have one column per layer and statistic, shape {want.shape}, got "
                        f"{np.shape(got)}")
                require(np.array_equal(got, want), f"last[{task!r}][{lens!r}] ({name}) holds "
                        "other columns than the last position's: columns are ordered "
                        "layer, position, statistic")
    return "only the last position's columns, for every task and lens"


@exercise("Exercise 2")
def check_counts(rows: object, min_auroc: float = 0.8) -> str:
    """``rows``: ``detection_table`` on token counts alone, clean prompts without the control."""
    require(isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows),
            f"expected the list of rows detection_table returns, got {inv.found(rows)}")
    require(all(r["lens"] == "tokens" for r in rows), "name the feature set 'tokens': "
            "{'len': {'tokens': (clean, injected)}}")
    best = max(r["auroc"] for r in rows)
    require(best >= min_auroc, f"counting tokens does not separate the classes (best AUROC "
            f"{best:.2f}): remove the length-matching comment from the clean prompts first")
    return "without the length control, counting tokens alone flags injected prompts"


@exercise("Exercise 3")
def check_best_layer(rows: object, best: object, layers: int) -> str:
    """``rows``: LOF on one layer at a time (features ``layer 0`` …); ``best``: the top layer."""
    require(isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows),
            f"expected the list of rows detection_table returns, got {inv.found(rows)}")
    names = {f"layer {i}" for i in range(layers)}
    require({r["lens"] for r in rows} == names, "name the feature sets 'layer 0' to "
            f"'layer {layers - 1}', one per layer; got {sorted({r['lens'] for r in rows})}")
    aurocs = {int(r["lens"].split()[1]): r["auroc"] for r in rows}
    best = inv.an_int(best, "the best layer", 0, layers - 1)
    top = max(aurocs, key=aurocs.get)
    require(aurocs[best] == aurocs[top], f"layer {top} has a higher AUROC than layer {best}")
    # Which layer wins can move with the CPU's kernels when AUROCs are close: not printed.
    return f"best_layer has the highest AUROC of the {layers} layers"
