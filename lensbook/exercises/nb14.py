"""Checks for notebook 14 (when is an example learned?): accuracy, one example, by depth."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from lensbook.analysis.statistic import depth_of_top1
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require


@exercise("Exercise 1")
def check_accuracy(accuracy: object, table: pd.DataFrame, targets: torch.Tensor) -> str:
    """``accuracy``: the share of held-out positions the final model predicts correctly."""
    value = inv.a_float(accuracy, "accuracy")
    require(0 <= value <= 1, f"a share lies between 0 and 1, got {value:.4g}")
    expected = len(table) / targets.numel()
    inv.close(value, expected, "accuracy", "the number of rows of `table` (the examples the "
              "final model gets right) divided by the number of predicted positions")
    return ("only these positions count as examples: for them, 'equals the final "
            "prediction' and 'correct' mean the same")


def first_example(table: pd.DataFrame) -> int:
    """The position of the first example in ``table`` (exercise 2's example)."""
    require(len(table) > 0, "the final model predicts no held-out position correctly, so "
            "there is no example to follow (random weights?)")
    return int(table["position"].iloc[0])


@exercise("Exercise 2")
def check_learned_step(learned_step: object, position: int, checkpoints: torch.Tensor,
                       targets: torch.Tensor, steps: Sequence[int]) -> str:
    """``learned_step``: the step from which on every checkpoint predicts ``position`` right."""
    step = inv.an_int(learned_step, "learned_step", min(steps), max(steps))
    require(step in steps, f"learned_step must be one of the checkpoints' steps {list(steps)}, "
            f"got {step}")
    column = checkpoints[:, position]
    right = (column == targets[position]).tolist()
    expected = steps[int(depth_of_top1(column[:, None])[0])]
    if step != expected:
        first_right = steps[right.index(True)]
        hint = (" That is the *first* checkpoint that gets it right; it is forgotten again "
                "later, so it is not learned yet." if step == first_right else "")
        require(False, f"at position {position} the checkpoints are right/wrong as {right}: "
                f"every checkpoint from step {expected} on is right, and not from an earlier "
                f"one.{hint}")
    return "learned = right at this checkpoint and at every later one (Baldock et al., 2021)"


@exercise("Exercise 3")
def check_by_depth(by_depth: object, table: pd.DataFrame) -> str:
    """``by_depth``: the mean step learned per tuned-lens prediction depth."""
    expected = table.groupby("tuned lens")["learned"].mean()
    by_depth = inv.a_series(by_depth, "by_depth", expected.index)
    inv.close(by_depth, expected, "by_depth", "the mean of `learned` over the examples of "
              "each tuned-lens prediction depth (`groupby` on the 'tuned lens' column)")
    return "one mean per depth: compare how it rises with the Spearman ρ above"
