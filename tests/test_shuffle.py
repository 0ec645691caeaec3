"""Training samples the whole data: seeded document orders and the CLI's training chunks."""

import json
from types import SimpleNamespace

import datasets
import pytest
import torch

from lensbook import cli
from lensbook.training.config import TrainConfig
from lensbook.training.loop import draw_order
from lensbook.training.shuffle import shuffled
from tests.test_sources import ByteTokenizer


def test_sized_data_is_a_seeded_permutation():
    items = list(range(1000))
    order = list(shuffled(items, seed=3))
    assert sorted(order) == items and order != items
    assert order == list(shuffled(items, seed=3))
    assert order != list(shuffled(items, seed=4))


def test_dataset_rows_come_back_as_dicts_in_a_random_order():
    rows = datasets.Dataset.from_dict({"text": [f"doc {i}" for i in range(600)],
                                       "id": list(range(600))})
    out = list(shuffled(rows, seed=0))
    assert sorted(r["id"] for r in out) == list(range(600))
    assert all(r["text"] == f"doc {r['id']}" for r in out)
    assert [r["id"] for r in out[:10]] != list(range(10))


def test_stream_shuffle_buffer_yields_each_item_once_and_stays_local():
    stream = (i for i in range(5000))
    out = list(shuffled(stream, seed=1, buffer_size=100))
    assert sorted(out) == list(range(5000)) and out != list(range(5000))
    assert out == list(shuffled(iter(range(5000)), seed=1, buffer_size=100))
    # An item leaves the buffer at most buffer_size positions before its place in the stream.
    assert all(item <= position + 100 for position, item in enumerate(out))
    assert list(shuffled(iter(range(50)), seed=1, buffer_size=1)) == list(range(50))
    with pytest.raises(ValueError, match="buffer_size"):
        list(shuffled(iter(range(5)), seed=1, buffer_size=0))


def _ordered_corpus(path, n_docs=200):
    """Documents in order; only the last tenth holds the byte 'Z' (token 91)."""
    rows = [{"text": ("Z" if i >= 0.9 * n_docs else "a") * 60} for i in range(n_docs)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


@pytest.mark.parametrize("streaming", [False, True])
def test_training_draws_chunks_from_the_end_of_an_ordered_corpus(tmp_path, streaming,
                                                                 monkeypatch):
    source = _ordered_corpus(tmp_path / "ordered.jsonl")
    if streaming:  # a stream of the same documents, read through a shuffle buffer
        texts = datasets.load_dataset("json", data_files=source, split="train", streaming=True)
        monkeypatch.setattr(cli, "load_chunks", _streaming_load_chunks(texts))
    # 12,200 tokens of data (200 x 61); the run needs 4 steps x 4 chunks x 64 = 1,024 (8%).
    # A stream is mixed only as far as its buffer reaches: here it holds all 200 documents.
    config = TrainConfig(steps=4, tokens_per_step=256, seq_len=64, seed=5)
    args = SimpleNamespace(data=source, split="train", text_column="text", subset=None,
                           streaming=streaming, data_tokens=None, shuffle_buffer=256)
    chunks = cli._training_chunks(args, ByteTokenizer(), config)
    used = chunks.input_ids[draw_order(len(chunks), config.seed)[:config.steps * 4]]
    end = ord("Z") + 1
    assert (used == end).any(), "no chunk from the end of the data was used"
    if streaming:  # only the budget was read, through the buffer
        assert len(chunks) == 16
    else:
        assert len(chunks) == 200 * 61 // 64
    again = cli._training_chunks(args, ByteTokenizer(), config)
    assert torch.equal(again.input_ids, chunks.input_ids)


def _streaming_load_chunks(texts):
    """``cli.load_chunks`` reading a stream (``load_texts`` would read the local file)."""
    from lensbook.training.data import chunk_texts

    def load(source, tokenizer, seq_len, *, max_tokens, shuffle, buffer_size, **_):
        return chunk_texts(shuffled(texts, shuffle, buffer_size), tokenizer, seq_len,
                           max_tokens=max_tokens)
    return load
