"""Checks for notebook 02 (training a tuned lens): bias-only lens, per-layer gain, AdamW."""

from __future__ import annotations

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook.analysis.evaluate import evaluate_lenses, pivot
from lensbook.core.lens import LogitLens
from lensbook.core.tuned import TunedLens
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require
from lensbook.training.data import TokenChunks
from lensbook.training.history import TrainHistory

EVAL_CHUNKS = 2  # held-out chunks the bias-only check evaluates on: enough to rank lenses


@exercise("Exercise 1")
def check_bias_only(lens: object, model: PreTrainedModel, chunks: TokenChunks) -> str:
    """``lens``: a trained bias-only tuned lens, closer to the output than the logit lens."""
    require(isinstance(lens, TunedLens), "expected a TunedLens (TunedLens.from_model(model, "
            f"bias_only=True), then train_lens), got {inv.found(lens)}")
    require(all(torch.count_nonzero(t.weight) == 0 for t in lens.translators),
            "a bias-only lens has no matrix: every translator's weight must stay zero. "
            "Build it with bias_only=True")
    require(any(torch.count_nonzero(t.bias) > 0 for t in lens.translators),
            "every bias is still zero: the lens is untrained (it equals the logit lens). "
            "Train it with lensbook.train_lens")
    lenses = {"logit": LogitLens.from_model(model), "bias": lens}
    few = TokenChunks(chunks.input_ids[:EVAL_CHUNKS], chunks.n_tokens, chunks.n_bytes)
    kl = pivot(evaluate_lenses(model, lenses, few), "kl", "nats/token")
    require(kl["bias"].mean() < kl["logit"].mean(), "averaged over layers, the bias-only lens "
            "must be closer to the model's output than the logit lens; it is not: train longer")
    return (f"a trained bias-only lens ({len(lens.translators)} biases, no matrices), closer to "
            "the output than the logit lens on average")


def _gain(curves: pd.DataFrame, last_steps: int) -> pd.Series:
    """KL at step 1 minus the mean KL of the last ``last_steps`` steps, per layer."""
    first = curves[curves.step == 1].set_index("layer").kl
    last = curves[curves.step > curves.step.max() - last_steps].groupby("layer").kl.mean()
    return first - last


@exercise("Exercise 2")
def check_gain(gain: object, curves: pd.DataFrame, last_steps: int = 3) -> str:
    """``gain``: per layer, the KL at step 1 minus the mean KL of the last three steps."""
    expected = _gain(curves, last_steps)
    gain = inv.a_series(gain, "gain", expected.index)
    inv.close(gain, expected, "gain", f"KL at step 1 minus the mean KL of the last "
              f"{last_steps} steps, in nats per token", 1e-3)
    most, least = int(expected.idxmax()), int(expected.idxmin())
    return f"layer {most} gains the most, layer {least} the least"


@exercise("Exercise 3")
def check_optimizer(history: object, adam_ahead: object, sgd: TrainHistory) -> str:
    """``history``: an AdamW run; ``adam_ahead``: its final mean KL beats SGD's at that step."""
    require(isinstance(history, TrainHistory), f"expected the TrainHistory that train_lens "
            f"returns for the AdamW run, got {inv.found(history)}")
    steps = len(history)
    require(0 < steps <= len(sgd), f"the AdamW run must have between 1 and {len(sgd)} steps "
            f"(SGD's), to compare at equal tokens; it has {steps}")
    require(sum(history.loss[-1]) < sum(history.loss[0]), "the AdamW run's loss did not fall: "
            "check the optimizer and learning rate (optimizer='adamw', lr=1e-3)")
    adam_ahead = inv.a_bool(adam_ahead, "adam_ahead")
    adam = sum(history.loss[-1]) / len(history.loss[-1])
    sgd_kl = sum(sgd.loss[steps - 1]) / len(sgd.loss[steps - 1])
    require(adam_ahead == (adam < sgd_kl), f"after {steps} steps AdamW's mean KL is "
            f"{'below' if adam < sgd_kl else 'above'} SGD's at the same step, so adam_ahead "
            f"must be {adam < sgd_kl}")
    ahead = "AdamW" if adam < sgd_kl else "SGD"
    return f"after {steps} steps of equal tokens, {ahead} is ahead on mean KL"
