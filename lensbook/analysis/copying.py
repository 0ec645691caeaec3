"""Copying and induction: how each layer rates the token that repeats next.

An *induction head* (Olsson et al. 2022) lets a model continue a sequence it has
already seen: on the second occurrence of ``… A B …``, seeing ``A`` again, it
predicts ``B``. The classic test repeats a block of random tokens: nothing but the
first occurrence can tell the model what comes next in the second.

The sequences are :class:`~lensbook.analysis.repeats.Repeats`. :func:`copy_statistics`
reads a :class:`~lensbook.core.trajectory.Trajectory` of one: for every layer, occurrence
and position, the probability, cross-entropy, rank and top-1 hit of the *copied
token*, the token that followed the same place in the first block.
:func:`summarize` averages them and :func:`copy_layers` finds the first layer whose
top-1 prediction is the copy at most positions. (Compare
:func:`lensbook.analysis.statistic.copy_rate`, which asks whether the top-1 token is the
*current* input token.)

Example:
    >>> seqs = random_repeats(range(1, 4096), length=50, count=8, seed=0,  # doctest: +SKIP
    ...                       prefix=[0], context=256)
    >>> table = copy_table(model, {"tuned lens": lens}, seqs, tokenizer)  # doctest: +SKIP
    >>> copy_layers(summarize(table))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook.analysis import metrics
from lensbook.analysis.repeats import Repeats, occurrence_name
from lensbook.core.lens import Lens
from lensbook.core.memory import release_memory
from lensbook.core.run import trajectories_from_ids
from lensbook.core.trajectory import Trajectory

STATISTIC_COLUMNS = ("probability", "cross_entropy", "rank", "top1")

def copy_statistics(traj: Trajectory, repeats: Repeats) -> pd.DataFrame:
    """How each layer rates the copied token, at every occurrence and position.

    Args:
        traj: The trajectory of ``repeats.input_ids`` under one lens.
        repeats: The sequence's structure.

    Returns:
        One row per (occurrence, position, layer) with columns ``occurrence`` (``"first"``,
        ``"second"``, …), ``position``, ``layer`` (``L`` = the model's output),
        ``probability`` and ``cross_entropy`` (nats) of the copied token, its 1-based
        ``rank`` and ``top1`` (1.0 where it is the lens's top-1 token).

    Raises:
        ValueError: When the trajectory is not of this sequence.
    """
    if traj.input_ids.tolist() != repeats.input_ids:
        raise ValueError("the trajectory's tokens are not the repeated sequence's")
    frames = [_occurrence_frame(traj, repeats, k) for k in range(repeats.repeats)]
    return pd.concat(frames, ignore_index=True)


def _occurrence_frame(traj: Trajectory, repeats: Repeats, k: int) -> pd.DataFrame:
    pos = repeats.positions(k)
    log_probs = traj.log_probs[:, pos]  # (layers + 1, period - 1, vocab)
    targets = repeats.copied_tokens.expand(log_probs.shape[:-1])
    logp = log_probs.gather(-1, targets[..., None]).squeeze(-1)
    layer, position = torch.meshgrid(torch.arange(log_probs.shape[0]), pos, indexing="ij")
    columns = {"position": position, "layer": layer, "probability": logp.exp(),
               "cross_entropy": -logp, "rank": metrics.target_rank(log_probs, targets),
               "top1": (log_probs.argmax(-1) == targets).float()}
    frame = pd.DataFrame({name: value.flatten().numpy() for name, value in columns.items()})
    frame.insert(0, "occurrence", occurrence_name(k))
    return frame


def copy_table(
    model: PreTrainedModel,
    lenses: Mapping[str, Lens],
    sequences: Sequence[Repeats],
    tokenizer=None,
    batch_size: int = 8,
) -> pd.DataFrame:
    """:func:`copy_statistics` of every sequence under every lens.

    Runs ``batch_size`` sequences per forward pass, one lens at a time, and keeps only
    the statistics, so memory stays small even with a 50k-token vocabulary: at most one
    lens's ``(L + 1, batch_size, seq, vocab)`` log-probabilities exist at once.

    Returns:
        The rows of :func:`copy_statistics` with the columns ``lens`` and ``sequence``
        (an index into ``sequences``) in front.
    """
    release_memory()  # what earlier cells freed: a 2 GB machine needs it back for this
    frames = []
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        for name, lens in lenses.items():
            frames += _lens_frames(model, name, lens, batch, start, tokenizer)
    return pd.concat(frames, ignore_index=True)


def _lens_frames(model: PreTrainedModel, name: str, lens: Lens, batch: Sequence[Repeats],
                 start: int, tokenizer) -> list[pd.DataFrame]:
    """:func:`copy_statistics` of one batch under one lens (its trajectories die here)."""
    trajs = trajectories_from_ids(model, {name: lens}, [s.input_ids for s in batch],
                                  tokenizer)[name]
    frames = []
    for index, (traj, seq) in enumerate(zip(trajs, batch, strict=True)):
        frame = copy_statistics(traj, seq)
        frame.insert(0, "sequence", start + index)
        frame.insert(0, "lens", name)
        frames.append(frame)
    return frames


def summarize(table: pd.DataFrame, by: Sequence[str] = ("lens", "occurrence")) -> pd.DataFrame:
    """Per group and layer: mean probability, cross-entropy and top-1 rate, median rank.

    Args:
        table: What :func:`copy_table` returns (extra grouping columns such as
            ``case`` may be added to it and named in ``by``).
        by: Grouping columns; ``layer`` is always added last.

    Returns:
        One row per group and layer, columns ``*by, layer, probability, cross_entropy,
        rank, top1``; ``top1`` is the *copy rate*, the share of positions whose top-1
        token is the copied one.
    """
    keys = [*by, "layer"]
    agg = {"probability": "mean", "cross_entropy": "mean", "rank": "median", "top1": "mean"}
    return table.groupby(keys, sort=False).agg(agg).reset_index()


def copy_layer(rates: Sequence[float], threshold: float = 0.5) -> int | None:
    """The first layer whose copy rate reaches ``threshold``, or ``None`` if none does.

    Args:
        rates: Copy rate (share of positions whose top-1 is the copied token) per layer.
        threshold: The share that counts as "the lens predicts the copy".
    """
    return next((layer for layer, rate in enumerate(rates) if rate >= threshold), None)


def copy_layers(
    summary: pd.DataFrame, threshold: float = 0.5, occurrence: str = "second"
) -> pd.Series:
    """:func:`copy_layer` of each group of a :func:`summarize` table, at one occurrence.

    Returns:
        A nullable-integer Series indexed by the summary's grouping columns (all but
        ``occurrence``, ``layer`` and the statistics): ``<NA>`` where no layer copies.
    """
    rows = summary[summary["occurrence"] == occurrence].sort_values("layer", kind="stable")
    if rows.empty:
        raise ValueError(f"no rows for occurrence {occurrence!r}")
    keys = [c for c in rows.columns if c not in ("occurrence", "layer", *STATISTIC_COLUMNS)]
    layers = rows.groupby(keys, sort=False)["top1"].agg(lambda r: copy_layer(list(r), threshold))
    return layers.astype("Int64").rename("copy_layer")


def repetition_gain(summary: pd.DataFrame, occurrence: str = "second") -> pd.DataFrame:
    """How much better each layer predicts the copied token at ``occurrence`` than at the first.

    Args:
        summary: A :func:`summarize` table.
        occurrence: The later occurrence to compare with the first.

    Returns:
        The summary's grouping columns (without ``occurrence``), ``layer`` and ``gain``:
        mean cross-entropy at the first occurrence minus at ``occurrence``, in nats.
        Positive means the repetition helps; a model that copies perfectly gains the
        whole first-occurrence loss.
    """
    keys = [c for c in summary.columns if c not in ("occurrence", *STATISTIC_COLUMNS)]
    ce = summary.pivot_table(index=keys, columns="occurrence", values="cross_entropy",
                             sort=False)
    if occurrence not in ce.columns or "first" not in ce.columns:
        raise ValueError(f"the summary needs the first and the {occurrence!r} occurrence")
    return (ce["first"] - ce[occurrence]).rename("gain").reset_index()
