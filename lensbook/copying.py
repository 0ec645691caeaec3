"""Copying and induction: how each layer rates the token that repeats next.

An *induction head* (Olsson et al. 2022) lets a model continue a sequence it has
already seen: on the second occurrence of ``… A B …``, seeing ``A`` again, it
predicts ``B``. The classic test repeats a block of random tokens: nothing but the
first occurrence can tell the model what comes next in the second.

:class:`Repeats` is one such sequence (an optional prefix such as BOS, then the
same block ``repeats`` times); :func:`random_repeats` and :func:`text_repeats`
build them from random tokens or from the start of real texts. :func:`copy_statistics`
reads a :class:`~lensbook.trajectory.Trajectory` of one: for every layer, occurrence
and position, the probability, cross-entropy, rank and top-1 hit of the *copied
token*, the token that followed the same place in the first block.
:func:`summarize` averages them and :func:`copy_layers` finds the first layer whose
top-1 prediction is the copy at most positions. (Compare
:func:`lensbook.tables.copy_rate`, which asks whether the top-1 token is the
*current* input token.)

Example:
    >>> seqs = random_repeats(range(1, 4096), length=50, count=8, seed=0,  # doctest: +SKIP
    ...                       prefix=[0], context=256)
    >>> table = copy_table(model, {"tuned lens": lens}, seqs, tokenizer)  # doctest: +SKIP
    >>> copy_layers(summarize(table))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook import metrics, trajectory
from lensbook.lenses import LogitLens
from lensbook.tokens import encode
from lensbook.trajectory import Trajectory

ORDINALS = ("first", "second", "third", "fourth", "fifth")
STATISTIC_COLUMNS = ("probability", "cross_entropy", "rank", "top1")


def occurrence_name(index: int) -> str:
    """``0 -> "first"``, ``1 -> "second"``, …; ``"#7"`` past the fifth."""
    return ORDINALS[index] if index < len(ORDINALS) else f"#{index + 1}"


@dataclass(frozen=True)
class Repeats:
    """A block of tokens repeated back to back, after an optional prefix.

    Attributes:
        input_ids: The whole sequence: ``prefix + block * repeats``.
        period: Length of the block, at least 2.
        repeats: How many times the block occurs, at least 2.
        offset: Length of the prefix (the block starts at this position).
    """

    input_ids: list[int]
    period: int
    repeats: int
    offset: int = 0

    @property
    def block(self) -> list[int]:
        """The repeated block, ``period`` token ids."""
        return self.input_ids[self.offset : self.offset + self.period]

    def positions(self, occurrence: int) -> torch.Tensor:
        """Where occurrence ``occurrence`` (0 = first) predicts its own tokens 1 … period-1.

        These are the ``period - 1`` positions whose token and next token both lie in
        that block; from the second occurrence on, the next token is a copy of the one
        ``period`` places earlier.
        """
        if not 0 <= occurrence < self.repeats:
            raise ValueError(f"occurrence must be in 0..{self.repeats - 1}, not {occurrence}")
        start = self.offset + occurrence * self.period
        return torch.arange(start, start + self.period - 1)

    @property
    def copied_tokens(self) -> torch.Tensor:
        """The token to predict at each of any occurrence's :meth:`positions`: ``block[1:]``.

        At the first occurrence it is simply the next token; later, it is the token that
        followed the same place in the first block: the copy.
        """
        return torch.tensor(self.block[1:])


def repeat_block(
    block: Sequence[int],
    repeats: int = 2,
    prefix: Sequence[int] = (),
    context: int | None = None,
) -> Repeats:
    """``prefix`` followed by ``block`` ``repeats`` times.

    Args:
        block: Token ids to repeat; at least 2, so that there is something to copy.
        repeats: How many times the block occurs; at least 2.
        prefix: Tokens before the first block (the BOS token, typically).
        context: The model's context length; ``None`` skips the check.

    Raises:
        ValueError: For a block shorter than 2, fewer than 2 repeats, or a sequence
            longer than ``context``.
    """
    block, prefix = [int(t) for t in block], [int(t) for t in prefix]
    if len(block) < 2:
        raise ValueError(f"the block needs at least 2 tokens to copy from, not {len(block)}")
    if repeats < 2:
        raise ValueError(f"a copy needs the block at least twice: repeats={repeats}")
    total = len(prefix) + len(block) * repeats
    if context is not None and total > context:
        raise ValueError(
            f"{len(prefix)} + {repeats} × {len(block)} = {total} tokens, but the model "
            f"takes at most {context}: use a shorter block or fewer repeats"
        )
    return Repeats(prefix + block * repeats, len(block), repeats, len(prefix))


def random_repeats(
    pool: Iterable[int],
    length: int,
    repeats: int = 2,
    *,
    count: int = 1,
    seed: int = 0,
    prefix: Sequence[int] = (),
    context: int | None = None,
) -> list[Repeats]:
    """``count`` sequences, each a random block of ``length`` tokens from ``pool``, repeated.

    Tokens are drawn without replacement, so each occurs once per block and the
    token to copy is never ambiguous. The same ``seed`` gives the same sequences.

    Raises:
        ValueError: As :func:`repeat_block`, or when ``pool`` has fewer than ``length``
            distinct tokens.
    """
    pool = torch.tensor(sorted({int(t) for t in pool}), dtype=torch.long)
    if len(pool) < length:
        raise ValueError(f"the pool has {len(pool)} distinct tokens, fewer than length={length}")
    generator = torch.Generator().manual_seed(seed)
    blocks = [pool[torch.randperm(len(pool), generator=generator)[:length]] for _ in range(count)]
    return [repeat_block(b.tolist(), repeats, prefix, context) for b in blocks]


def text_repeats(
    tokenizer,
    texts: Iterable[str],
    length: int,
    repeats: int = 2,
    *,
    context: int | None = None,
) -> list[Repeats]:
    """The first ``length`` tokens of each text, repeated, after the tokenizer's BOS.

    Tokenising once and repeating the ids (rather than the text) keeps both
    occurrences token for token the same.

    Raises:
        ValueError: As :func:`repeat_block`, or for a text shorter than ``length`` tokens.
    """
    result = []
    for index, text in enumerate(texts):
        ids = encode(tokenizer, text, prepend_bos=False)
        if len(ids) < length:
            raise ValueError(f"text {index} has {len(ids)} tokens, fewer than length={length}")
        bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
        result.append(repeat_block(ids[:length], repeats, bos, context))
    return result


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
    lenses: Mapping[str, LogitLens],
    sequences: Sequence[Repeats],
    tokenizer=None,
    batch_size: int = 8,
) -> pd.DataFrame:
    """:func:`copy_statistics` of every sequence under every lens.

    Runs ``batch_size`` sequences per forward pass and keeps only the statistics, so
    memory stays small even with a 50k-token vocabulary.

    Returns:
        The rows of :func:`copy_statistics` with the columns ``lens`` and ``sequence``
        (an index into ``sequences``) in front.
    """
    frames = []
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        by_lens = trajectory.from_ids(model, lenses, [s.input_ids for s in batch], tokenizer)
        for lens, trajs in by_lens.items():
            for index, (traj, seq) in enumerate(zip(trajs, batch, strict=True)):
                frame = copy_statistics(traj, seq)
                frame.insert(0, "sequence", start + index)
                frame.insert(0, "lens", lens)
                frames.append(frame)
    return pd.concat(frames, ignore_index=True)


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
