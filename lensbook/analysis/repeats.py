"""Repeated sequences: a block of tokens seen again, the test of induction and copying.

:class:`Repeats` is one such sequence (an optional prefix such as BOS, then the same
block ``repeats`` times); :func:`random_repeats` and :func:`text_repeats` build them
from random tokens or from the start of real texts. :mod:`lensbook.analysis.copying`
reads trajectories of them.

Example:
    >>> seqs = random_repeats(range(1, 4096), length=50, count=8, seed=0,  # doctest: +SKIP
    ...                       prefix=[0], context=256)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from lensbook.core.tokens import encode

ORDINALS = ("first", "second", "third", "fourth", "fifth")


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
