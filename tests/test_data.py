"""Chunking: shapes, EOS between documents, no padding, the bits-per-byte factor."""

import math

import datasets
import pytest
import torch

from lensbook.training.data import TokenChunks, chunk_texts


class ByteTokenizer:
    """One token per UTF-8 byte (ids 1..256), EOS = 0: easy to check by hand."""

    eos_token_id = 0

    def __call__(self, texts, add_special_tokens=False, verbose=False):
        assert not add_special_tokens
        return {"input_ids": [[b + 1 for b in t.encode("utf-8")] for t in texts]}


def test_documents_joined_with_eos_and_cut_without_padding():
    chunks = chunk_texts(["abc", "de", "fghij"], ByteTokenizer(), seq_len=4)
    # stream: a b c EOS d e EOS f g h i j EOS (13 tokens) -> 3 chunks, tail dropped
    stream = [98, 99, 100, 0, 101, 102, 0, 103, 104, 105, 106, 107]
    assert chunks.input_ids.dtype == torch.long
    assert chunks.input_ids.tolist() == [stream[0:4], stream[4:8], stream[8:12]]
    assert chunks.n_tokens == 13 and chunks.n_bytes == 10 and len(chunks) == 3


def test_bits_per_byte_factor_by_hand():
    # "é" is 2 UTF-8 bytes; the stream is 2 + 1 (EOS) + 3 + 1 = 7 tokens for 5 bytes.
    chunks = chunk_texts(["é", "abc"], ByteTokenizer(), seq_len=2)
    assert chunks.bits_per_byte_factor == pytest.approx(7 / 5 / math.log(2))
    # a uniform guess over 256 byte values costs 8 bits per byte
    n = TokenChunks(torch.zeros(1, 1, dtype=torch.long), n_tokens=10, n_bytes=10)
    assert math.log(256) * n.bits_per_byte_factor == pytest.approx(8.0)


def test_dataset_with_named_column_and_max_tokens():
    ds = datasets.Dataset.from_dict({"body": ["x" * 10] * 50, "other": list(range(50))})
    chunks = chunk_texts(ds, ByteTokenizer(), seq_len=8, text_column="body",
                         max_tokens=40, batch_size=2)
    assert chunks.input_ids.shape == (5, 8)
    assert chunks.n_tokens == 44  # stops after the batch that reached 40
    rows = chunk_texts(iter([{"body": "hello"}]), ByteTokenizer(), 3, text_column="body")
    assert rows.input_ids.shape == (2, 3)


def test_real_tokenizer_batches_match_single_calls(tmp_path):
    from lensbook.embedded.tokenizer import train_tokenizer

    texts = ["The quick brown fox.", "def f(x):\n    return x", "Ünïcode ✓"] * 20
    tok = train_tokenizer(texts, vocab_size=300)
    chunks = chunk_texts(texts, tok, seq_len=16, batch_size=7)
    expected = []
    for t in texts:
        expected += tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert chunks.n_tokens == len(expected)
    flat = chunks.input_ids.flatten().tolist()
    assert flat == expected[: len(flat)]


def test_errors():
    class NoEos(ByteTokenizer):
        eos_token_id = None

    with pytest.raises(ValueError, match="EOS"):
        chunk_texts(["abc"], NoEos(), seq_len=2)
    with pytest.raises(ValueError, match="fewer than one chunk"):
        chunk_texts(["abc"], ByteTokenizer(), seq_len=100)
