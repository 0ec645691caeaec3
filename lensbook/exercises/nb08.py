"""Checks for notebook 08 (the paper's figures): a closing bracket, Fig. 5 by layer, Fig. 14."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lensbook.analysis.statistic import prediction_depth
from lensbook.core.lens import Lens
from lensbook.core.run import trajectory
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require

CLOSING = (")", "]", "}")


@exercise("Exercise 1")
def check_bracket(prompt: object, layer: object, model: PreTrainedModel,
                  tokenizer: PreTrainedTokenizerBase, lens: Lens) -> str:
    """``prompt``: code whose next token closes a bracket; ``layer``: where the lens gets it."""
    prompt = inv.a_string(prompt, "the prompt")
    require(any(c in prompt for c in "([{"), "the prompt must open a bracket for the model "
            "to close, e.g. print(len(items")
    traj = trajectory(model, tokenizer, lens, [prompt])[0]
    said = tokenizer.decode([int(traj.log_probs[-1, -1].argmax())])
    require(said.strip().startswith(CLOSING), f"the model continues your prompt with {said!r}, "
            "not a closing bracket: end the prompt where only a bracket can come next")
    depth = int(prediction_depth(traj)[-1])
    layer = inv.an_int(layer, "the layer", 0, traj.num_layers)
    require(layer == depth, f"the first layer from which the lens's top-1 stays {said!r} is "
            f"{'lower' if depth < layer else 'higher'} than {layer}: use the prediction depth "
            "of the last position")
    return f"the model closes the bracket with {said!r}; the lens has it from layer {depth}"


@exercise("Exercise 2")
def check_by_layer(fig: object, longest: object, sizes: pd.DataFrame) -> str:
    """``fig``: Fig. 5 against ``x="layer"``; ``longest``: the model with the most layers."""
    require(isinstance(fig, Figure), f"fig must be the Figure that plot_models_by_layer "
            f"returns, got {inv.found(fig)}")
    labels = {ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()}
    require(labels == {"layer"}, f"the x axis must be the layer (x='layer'), got {labels}")
    deepest = sizes.groupby("model").layer.max()
    longest = inv.a_string(longest, "longest")
    require(longest in deepest.index, f"{longest!r} is not one of {list(deepest.index)}")
    require(deepest[longest] == deepest.max(), f"{longest!r} has {deepest[longest]} layers, "
            f"{deepest.idxmax()!r} has {deepest.max()}")
    return f"{deepest.idxmax()} has the longest curve: by layer, sizes differ in length"


@exercise("Exercise 3")
def check_worst(worst: object, families: pd.DataFrame) -> str:
    """``worst``: ``(model, layer)`` where the logit lens's cross-entropy is highest."""
    require(isinstance(worst, tuple) and len(worst) == 2, f"worst must be a (model, layer) "
            f"tuple, got {inv.found(worst)}")
    logit = families[families["lens"] == "logit lens"]
    row = logit.loc[logit["value"].idxmax()]
    model, layer = worst
    require((model, inv.an_int(layer, "the layer", 0, 10_000)) == (row["model"], row["layer"]),
            f"({model!r}, {layer}) is not the highest logit-lens value of the families' curves: "
            "take the row with the largest value among the logit lens's rows")
    return f"{row['model']} at layer {int(row['layer'])} has the worst logit lens"
