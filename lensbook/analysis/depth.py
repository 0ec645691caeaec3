"""Prediction depth (paper Fig. 12): when a lens settles on the model's final answer.

The depth of a position is the first layer from which the lens's top-1 token stays
the output's (:func:`lensbook.analysis.statistic.prediction_depth`). Depth needs only
each layer's top-1 token: :func:`text_depths` keeps just that (a :class:`TextDepth` per
text and lens) instead of full-vocabulary trajectories, which with a 50k vocabulary and
13 rows take 2.6 MB per token and lens. :func:`depth_table` lists the depth of every
position, grouped by how common the predicted token is.

Example:
    >>> depths = text_depths(model, tokenizer, lenses, texts)  # doctest: +SKIP
    >>> table = depth_table(depths, most_frequent(chunks.input_ids, 100))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook.analysis.statistic import depth_of_top1, top_tokens
from lensbook.core.lens import Lens
from lensbook.core.model import context_length, read, run_model
from lensbook.core.tokens import (
    cached_vocabulary,
    check_lengths,
    encode_prompts,
    is_byte_level,
    readable_token,
)
from lensbook.core.trajectory import Trajectory


@dataclass
class TextDepth:
    """The prediction depth of every token of one text under one lens.

    Attributes:
        depth: First layer from which the lens's top-1 stays the output's, ``(seq,)``.
        output_ids: The model's own top-1 token at each position, ``(seq,)``.
        labels: Readable input tokens, ``seq`` of them.
        num_layers: ``L``; depths run from 0 to ``L``.
        lens_label: Which lens (``"tuned lens"``).
    """

    depth: torch.Tensor
    output_ids: torch.Tensor
    labels: list[str]
    num_layers: int
    lens_label: str

    @classmethod
    def of(cls, traj: Trajectory) -> TextDepth:
        """The depths of a full trajectory."""
        top1 = top_tokens(traj)
        return cls(depth_of_top1(top1), top1[-1], traj.input_labels(), traj.num_layers,
                   traj.lens_label)

    def input_labels(self) -> list[str]:
        """Readable input tokens (as :meth:`Trajectory.input_labels`)."""
        return self.labels


@torch.inference_mode()
def layer_top1(model: PreTrainedModel, lens: Lens, input_ids: torch.Tensor) -> torch.Tensor:
    """Top-1 token of ``lens`` at each layer and of the model's output, ``(L + 1, seq)``.

    One sequence (``input_ids`` of shape ``(seq,)``); one layer is decoded at a time, so
    at most one ``(seq, vocab)`` block of logits exists.
    """
    hidden, logits = run_model(model, input_ids[None].to(model.device))
    rows = [lens(read(hidden, p), i)[0].argmax(-1) for i, p in enumerate(lens.read_points())]
    return torch.stack([*rows, logits[0].argmax(-1)]).cpu()


def text_depths(
    model: PreTrainedModel,
    tokenizer,
    lenses: Mapping[str, Lens],
    texts: Sequence[str],
    *,
    prepend_bos: bool = True,
) -> dict[str, list[TextDepth]]:
    """Prediction depths of ``texts`` under each lens, one text and one layer at a time.

    The same depths as ``TextDepth.of`` on :func:`lensbook.trajectories_by_lens`'s
    trajectories (up to exact ties in the logits), in memory that does not grow with the
    number of texts or the vocabulary times the layers.

    Raises:
        ValueError: For an empty text or one longer than the model's context.
    """
    seqs = encode_prompts(tokenizer, texts, prepend_bos)
    check_lengths(seqs, context_length(model))
    vocab = cached_vocabulary(tokenizer, model.get_output_embeddings().weight.shape[0])
    byte_level = is_byte_level(vocab)
    result: dict[str, list[TextDepth]] = {name: [] for name in lenses}
    for seq in seqs:
        ids = torch.tensor(seq)
        labels = [readable_token(vocab[i], byte_level=byte_level) for i in seq]
        for name, lens in lenses.items():
            top1 = layer_top1(model, lens, ids)
            result[name].append(TextDepth(depth_of_top1(top1), top1[-1], labels,
                                          len(top1) - 1, name or lens.label))
    return result


def depth_table(
    trajectories: Mapping[str, Sequence[Trajectory | TextDepth]], frequent: set[int]
) -> pd.DataFrame:
    """Prediction depth of every position, labelled by how common the predicted token is.

    Args:
        trajectories: For each lens name, trajectories (or :func:`text_depths`) of the
            same texts.
        frequent: Token ids counted as "frequent" (e.g. the 100 most common in a corpus).

    Returns:
        A DataFrame with columns ``lens, prompt, position, token, group, depth``: ``token``
        is the model's output top-1 id, ``group`` is ``"frequent"`` or ``"rare"``, and
        ``depth`` the first layer from which the lens's top-1 stays the output's.
    """
    rows = []
    for lens, trajs in trajectories.items():
        for prompt, traj in enumerate(trajs):
            depths = traj if isinstance(traj, TextDepth) else TextDepth.of(traj)
            outputs = depths.output_ids.tolist()
            for position, depth in enumerate(depths.depth.tolist()):
                token = outputs[position]
                group = "frequent" if token in frequent else "rare"
                rows.append((lens, prompt, position, token, group, depth))
    columns = ["lens", "prompt", "position", "token", "group", "depth"]
    return pd.DataFrame(rows, columns=columns)


def frequency_ranking(ids: torch.Tensor, k: int) -> list[int]:
    """The ``k`` most frequent token ids in ``ids`` (any shape), most frequent first.

    Ties keep the lower id first, so the ranking is the same on every machine.
    """
    counts = torch.bincount(ids.flatten())
    return torch.sort(counts, descending=True, stable=True).indices[:k].tolist()


def most_frequent(ids: torch.Tensor, k: int) -> set[int]:
    """The ``k`` most frequent token ids in ``ids`` (any shape), as a set."""
    return set(frequency_ranking(ids, k))
