"""Checks for notebook 01 (the logit lens): prediction depth, confidence, copying."""

from __future__ import annotations

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lensbook.analysis.statistic import prediction_depth, top_tokens
from lensbook.core.lens import Lens
from lensbook.core.run import trajectory
from lensbook.core.trajectory import Trajectory
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, fail, require


@exercise("Exercise 1")
def check_first_layer(layer: object, traj: Trajectory) -> str:
    """``layer``: the first layer from which the last position's top-1 stays the output's."""
    L = traj.num_layers
    layer = inv.an_int(layer, "the layer", 0, L)
    top1 = top_tokens(traj)[:, -1]  # (layers + 1,)
    answer = traj.label(int(top1[-1]))
    for above in range(layer, L):
        if top1[above] != top1[-1]:
            fail(f"from layer {layer} on, the top-1 must stay the output's ({answer!r}), but "
                 f"layer {above} predicts {traj.label(int(top1[above]))!r}: look higher up")
    require(layer == 0 or top1[layer - 1] != top1[-1], f"layer {layer - 1} already predicts "
            f"{answer!r}, like every layer above it: the first such layer is lower")
    return f"from layer {layer} on, the logit lens predicts the output's {answer!r}"


@exercise("Exercise 2")
def check_confidence(table: object, traj: Trajectory) -> str:
    """``table``: one row per layer, ``confidence`` (mean top-1 probability) and ``accuracy``.

    Both are averaged over the positions that have a next token (all but the last).
    """
    table = inv.a_frame(table, "the table", ["confidence", "accuracy"])
    L = traj.num_layers
    require(len(table) == L + 1, f"the table must have one row per layer, 0 to {L} "
            f"(the output), got {len(table)} rows")
    has_target = traj.targets >= 0
    probs = traj.log_probs[:, has_target].exp()  # (layers + 1, positions, vocab)
    confidence = probs.max(-1).values.mean(1)
    accuracy = (probs.argmax(-1) == traj.targets[has_target]).float().mean(1)
    for column in ("confidence", "accuracy"):
        values = table[column].to_numpy()
        require(((values >= 0) & (values <= 1)).all(), f"{column} is a fraction: every value "
                f"must lie in [0, 1]")
    inv.close(table["confidence"], confidence, "confidence",
              "mean over positions with a next token of the largest probability", 1e-3)
    inv.close(table["accuracy"], accuracy, "accuracy",
              "fraction of positions whose top-1 is the true next token", 1e-3)
    return "one row per layer: where confidence exceeds accuracy, the layer is over-confident"


@exercise("Exercise 3")
def check_copy(prompt: object, layer: object, model: PreTrainedModel,
               tokenizer: PreTrainedTokenizerBase, lens: Lens) -> str:
    """``prompt`` makes the model copy an earlier token; ``layer`` is where the copy appears."""
    prompt = inv.a_string(prompt, "the prompt")
    traj = trajectory(model, tokenizer, lens, [prompt])[0]
    output = int(traj.log_probs[-1, -1].argmax())
    said = traj.label(output)
    # A name is copied whatever the space before it: " item" in the prompt, "item" after "(".
    earlier = {tokenizer.decode([i]).strip() for i in traj.input_ids[:-1].tolist()}
    copied = tokenizer.decode([output]).strip() in earlier - {""}
    require(copied, f"the model continues your prompt with {said!r}, which is not "
            f"in the prompt: that is not copying. The embedded model copies names in code, "
            f"e.g. a loop variable inside the loop's body")
    require(output != int(traj.input_ids[-1]), f"the model repeats the prompt's last token "
            f"{said!r}: an echo, not a copy of an earlier name")
    depth = int(prediction_depth(traj)[-1])
    layer = inv.an_int(layer, "the copy layer", 0, traj.num_layers)
    require(layer == depth, f"the copy layer is the first layer from which the top-1 stays "
            f"{said!r} (the prediction depth of the last position), not layer {layer}")
    return f"the model copies {said!r} from earlier in the prompt; it appears at layer {depth}"


__all__ = ["check_confidence", "check_copy", "check_first_layer"]
