"""Documents in a seeded random order, so that training samples the whole data set.

Training must not read the first tokens of a source in file order: a corpus is often
ordered (by topic, by module name, by date) and a short run would see a narrow slice of
it. Two ways, chosen by what the data is:

* **Sized data** (a ``datasets.Dataset``, a list): a full random permutation of the
  documents. Reading documents in this order until a token budget is met gives a
  uniform random sample of the documents of the whole data set; reading them all
  (the default for local files and the corpus) lets the training loop draw chunks at
  random from all of the data.
* **Streams** (a streaming Hub data set, any iterable): a *shuffle buffer*. The first
  ``buffer_size`` documents fill a buffer; each next document takes the place of a
  random one in the buffer, which is yielded. Memory holds ``buffer_size`` documents
  at most. A document is yielded at most ``buffer_size`` positions *before* its place
  in the stream, but possibly much later, so the sample is local to the part of the
  stream that was read: a stream that is itself ordered (by date, say) is only
  partially mixed. This is the same trade-off as ``datasets.IterableDataset.shuffle``
  and ``tf.data``'s shuffle; a bigger buffer mixes more.

Both orders depend on the seed alone, so a run and its resumption read the same chunks.

Example:
    >>> list(shuffled(["a", "b", "c", "d"], seed=0))  # doctest: +SKIP
    ['c', 'a', 'd', 'b']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

# Documents held by the shuffle buffer of a stream: at ~4 kB of text per document
# about 40 MB, and enough to mix the documents of many files or shards.
BUFFER_SIZE = 10_000
# Documents fetched per read of a sized data set (one ``dataset[indices]`` call).
BLOCK = 256


def is_sized(data: Any) -> bool:
    """Whether ``data`` supports ``len`` and integer indexing (a list, a ``Dataset``)."""
    return hasattr(data, "__len__") and hasattr(data, "__getitem__") and not isinstance(
        data, (str, bytes, dict))


def shuffled(data: Iterable, seed: int, buffer_size: int = BUFFER_SIZE) -> Iterator:
    """Yield the items of ``data`` in a random order fixed by ``seed``.

    Args:
        data: Sized data (a full permutation) or any iterable (a shuffle buffer).
        seed: Seed of the order.
        buffer_size: Items held by the shuffle buffer of an iterable; ignored for
            sized data.

    Yields:
        The items (rows of a ``datasets.Dataset`` as dicts).
    """
    rng = np.random.default_rng(seed)
    if is_sized(data):
        yield from _permuted(data, rng)
    else:
        yield from _buffered(data, rng, buffer_size)


def _permuted(data, rng: np.random.Generator) -> Iterator:
    order = rng.permutation(len(data))
    columnar = hasattr(data, "column_names")  # a datasets.Dataset: fetch rows in blocks
    for start in range(0, len(order), BLOCK):
        block = order[start:start + BLOCK].tolist()
        if columnar:
            columns = data[block]
            yield from (dict(zip(columns, row, strict=True)) for row in zip(*columns.values(),
                                                                             strict=True))
        else:
            yield from (data[i] for i in block)


def _buffered(data: Iterable, rng: np.random.Generator, buffer_size: int) -> Iterator:
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be positive, not {buffer_size}")
    buffer: list = []
    for item in data:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        i = int(rng.integers(buffer_size))
        buffer[i], item = item, buffer[i]
        yield item
    rng.shuffle(buffer)
    yield from buffer
