"""Where training and evaluation text comes from, as a ``datasets`` data set of documents.

A *source* is one of:

* ``"corpus"``: the embedded corpus (:func:`lensbook.embedded.corpus.load_corpus`), offline;
* a local file or folder: ``.txt`` files (one document per file), ``.jsonl``/``.json``
  files (one document per record, text in ``text_column``), or a folder written by
  ``Dataset.save_to_disk``;
* anything else is a Hugging Face Hub data set name, loaded with
  ``datasets.load_dataset`` (``streaming=True`` reads only as much as is needed).

:func:`load_chunks` then joins the documents with EOS and cuts them into chunks with
:func:`lensbook.training.data.chunk_texts`, which also gives the bits-per-byte factor of the
text it read.

Example:
    >>> chunks = load_chunks("corpus", tokenizer, seq_len=256, split="test")  # doctest: +SKIP
    >>> chunks = load_chunks("notes/", tokenizer, seq_len=256)  # .txt files  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import datasets

from lensbook.embedded import corpus
from lensbook.training.data import TokenChunks, chunk_texts
from lensbook.training.shuffle import BUFFER_SIZE, shuffled

CORPUS_NAMES = ("corpus", "lensbook-corpus")
# Local file suffix -> ``datasets`` packaged builder.
BUILDERS = {".txt": "text", ".jsonl": "json", ".json": "json"}
# Corpus splits are "train" and "test"; Hub-style names for the held-out split map to "test".
_CORPUS_SPLITS = {"train": "train", "test": "test", "validation": "test", "all": "all"}

# Files that ``save_to_disk`` writes into a Dataset / DatasetDict folder.
SAVED_MARKERS = ("dataset_info.json", "dataset_dict.json")

Texts = datasets.Dataset | datasets.IterableDataset


def load_texts(
    source: str = "corpus",
    split: str = "train",
    *,
    subset: str | None = None,
    text_column: str = "text",
    streaming: bool = False,
    revision: str | None = None,
) -> Texts:
    """Load the documents of a source (see the module docstring).

    Args:
        source: ``"corpus"``, a local path, or a Hub data set name.
        split: Split to read (``"train"``, ``"test"``, ``"validation"``, …). Local files
            have a single split and ignore it.
        subset: Hub configuration name (``load_dataset(name, subset)``).
        text_column: Column holding the text; checked to exist.
        streaming: Stream a Hub data set instead of downloading it whole.
        revision: Hub revision of the data set.

    Returns:
        A ``datasets.Dataset`` (or ``IterableDataset`` when streaming).

    Raises:
        ValueError: Unknown split of the corpus, unsupported files, or no such column.
    """
    if source in CORPUS_NAMES:
        if split not in _CORPUS_SPLITS:
            raise ValueError(f"the corpus has splits {sorted(_CORPUS_SPLITS)}, not {split!r}")
        return corpus.load_corpus(_CORPUS_SPLITS[split])
    path = Path(source).expanduser()
    if path.exists():
        texts = _load_local(path, split)
    else:
        texts = datasets.load_dataset(source, subset, split=split, streaming=streaming,
                                      revision=revision)
    _check_column(texts, text_column, source)
    return texts


def _load_local(path: Path, split: str) -> datasets.Dataset:
    if path.is_dir() and any((path / f).exists() for f in SAVED_MARKERS):
        saved = datasets.load_from_disk(str(path))
        return saved[split] if isinstance(saved, datasets.DatasetDict) else saved
    files = sorted(p for p in path.rglob("*") if p.suffix in BUILDERS) if path.is_dir() else [path]
    builders = {BUILDERS.get(p.suffix) for p in files}
    if not files or None in builders or len(builders) > 1:
        raise ValueError(
            f"{path}: expected .txt files or .jsonl/.json files (one kind), found "
            f"{sorted({p.suffix for p in files}) or 'none'}"
        )
    builder = builders.pop()
    extra = {"sample_by": "document"} if builder == "text" else {}
    return datasets.load_dataset(builder, data_files=[str(p) for p in files], split="train",
                                 **extra)


def _check_column(texts: Texts, text_column: str, source: str) -> None:
    columns = texts.column_names
    if columns is not None and text_column not in columns:
        raise ValueError(f"{source} has no column {text_column!r}; its columns are {columns}")


def filter_texts(texts: Texts, field: str, value: str) -> Texts:
    """Keep the documents whose ``field`` equals ``value``: a slice of one kind of text.

    Args:
        texts: Documents from :func:`load_texts` (streaming or not).
        field: A column, or a dotted path into a struct column: ``"kind"`` in the
            embedded corpus (``"topic"``, ``"doc"`` or ``"src"``),
            ``"meta.pile_set_name"`` in the Pile (``"Github"``, ``"Pile-CC"``, …).
        value: The value to keep.

    Example:
        >>> manual = filter_texts(load_texts("corpus"), "kind", "topic")  # doctest: +SKIP
    """
    keys = field.split(".")

    def keep(row: dict) -> bool:
        for key in keys:
            row = row[key]
        return row == value

    return texts.filter(keep)


def load_chunks(
    source: str,
    tokenizer,
    seq_len: int,
    *,
    split: str = "train",
    max_tokens: int | None = None,
    text_column: str = "text",
    subset: str | None = None,
    streaming: bool = False,
    shuffle: int | None = None,
    buffer_size: int = BUFFER_SIZE,
) -> TokenChunks:
    """Load a source and cut it into ``(n_chunks, seq_len)`` token chunks.

    Args:
        source: See :func:`load_texts`.
        tokenizer: The model's tokenizer (its EOS joins documents).
        seq_len: Tokens per chunk.
        split: Split to read.
        max_tokens: Stop reading once this many tokens are read (the training budget);
            None reads everything.
        text_column: Column holding the text.
        subset: Hub configuration name.
        streaming: Stream a Hub data set.
        shuffle: Seed of a random document order (see :mod:`lensbook.training.shuffle`):
            with ``max_tokens``, the chunks then come from documents sampled from the
            whole source rather than its first documents in file order. ``None``
            (default) reads in file order (held-out data: reproducible and cheap).
        buffer_size: Documents in the shuffle buffer of a streaming source.

    Returns:
        The chunks with the bits-per-byte factor of the text they came from.
    """
    texts = load_texts(source, split, subset=subset, text_column=text_column,
                       streaming=streaming)
    if shuffle is not None:
        texts = shuffled(texts, shuffle, buffer_size)
    return chunk_texts(texts, tokenizer, seq_len, text_column=text_column, max_tokens=max_tokens)
