"""Text to fixed-length token chunks, the way the tuned-lens paper prepares data.

Documents are joined with the tokenizer's EOS token (one after every document),
tokenised once and cut into chunks of ``seq_len`` tokens: no padding, no attention
mask, the tail that does not fill a chunk is dropped. Along with the chunks comes the
factor that turns a loss in nats per token into bits per byte, the unit of the paper.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import datasets
import numpy as np
import torch


@dataclass
class TokenChunks:
    """Fixed-length token chunks and what is needed to report bits per byte.

    Attributes:
        input_ids: Token ids, shape ``(n_chunks, seq_len)``, dtype ``torch.long``.
        n_tokens: Tokens in the whole joined stream, EOS separators included
            (before the incomplete last chunk was dropped).
        n_bytes: UTF-8 bytes of the documents that produced those tokens.
    """

    input_ids: torch.Tensor
    n_tokens: int
    n_bytes: int

    @property
    def bits_per_byte_factor(self) -> float:
        """Multiply a mean loss in nats per token by this to get bits per byte.

        Equal to ``n_tokens / n_bytes / ln 2``: nats/token × tokens/byte = nats/byte,
        divided by ln 2 nats per bit.
        """
        return self.n_tokens / self.n_bytes / math.log(2)

    def __len__(self) -> int:
        return self.input_ids.shape[0]


def token_ids(data: TokenChunks | torch.Tensor) -> torch.Tensor:
    """The ``(n_chunks, seq_len)`` ids of chunks given either way."""
    return data.input_ids if isinstance(data, TokenChunks) else data


def bits_per_byte_of(
    data: TokenChunks | torch.Tensor, override: float | None = None
) -> float | None:
    """``override`` if given, else the chunks' factor (``None`` for bare ids)."""
    if override is not None or not isinstance(data, TokenChunks):
        return override
    return data.bits_per_byte_factor


def _text_batches(
    data: datasets.Dataset | Iterable[str] | Iterable[dict],
    text_column: str,
    batch_size: int,
) -> Iterator[list[str]]:
    """Yield lists of document strings from a data set or an iterable."""
    if isinstance(data, datasets.Dataset):
        for start in range(0, len(data), batch_size):
            yield data[start:start + batch_size][text_column]
        return
    it = iter(data)
    while batch := list(islice(it, batch_size)):
        yield [row[text_column] if isinstance(row, dict) else row for row in batch]


def chunk_texts(
    data: datasets.Dataset | Iterable[str] | Iterable[dict],
    tokenizer,
    seq_len: int,
    text_column: str = "text",
    max_tokens: int | None = None,
    batch_size: int = 256,
) -> TokenChunks:
    """Join documents with EOS, tokenise once and cut into fixed-length chunks.

    Args:
        data: A ``datasets.Dataset`` (or streaming data set / iterable of dicts) with
            a text column, or an iterable of strings; one document per item.
        tokenizer: A Hugging Face tokenizer with an ``eos_token_id``. Called in batches
            without special tokens (no BOS); EOS is appended after every document.
        seq_len: Tokens per chunk.
        text_column: Name of the column holding the text.
        max_tokens: Stop reading documents once the stream holds this many tokens and
            keep at most this many (useful for large or streaming data sets); None
            reads everything.
        batch_size: Documents per tokenizer call.

    Returns:
        ``TokenChunks`` with ``input_ids`` of shape ``(n_chunks, seq_len)`` and the
        bits-per-byte factor of the text that was read.

    Raises:
        ValueError: If the tokenizer has no EOS token or the text is shorter than
            one chunk.

    Example:
        >>> chunks = chunk_texts(["a short text", "another"], tokenizer, seq_len=4)
        >>> loss_bits_per_byte = loss_nats_per_token * chunks.bits_per_byte_factor
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token to join documents with")
    pieces: list[np.ndarray] = []
    n_tokens = n_bytes = 0
    for texts in _text_batches(data, text_column, batch_size):
        ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        for text, doc in zip(texts, ids, strict=True):
            pieces.append(np.asarray([*doc, eos], dtype=np.int64))
            n_tokens += len(doc) + 1
            n_bytes += len(text.encode("utf-8"))
        if max_tokens is not None and n_tokens >= max_tokens:
            break
    n_chunks = min(n_tokens, max_tokens or n_tokens) // seq_len
    if n_chunks == 0:
        raise ValueError(f"only {n_tokens} tokens, fewer than one chunk of {seq_len}")
    stream = np.concatenate(pieces)[: n_chunks * seq_len]
    input_ids = torch.from_numpy(stream).view(n_chunks, seq_len)
    return TokenChunks(input_ids=input_ids, n_tokens=n_tokens, n_bytes=n_bytes)
