"""Data sources: embedded corpus, local .txt/.jsonl files and folders, Hub names (offline)."""

import json

import datasets
import pytest

from lensbook.training import sources


class ByteTokenizer:
    """One token per UTF-8 byte (ids 1..256), EOS = 0."""

    eos_token_id = 0

    def __call__(self, texts, add_special_tokens=False, verbose=False):
        return {"input_ids": [[b + 1 for b in t.encode("utf-8")] for t in texts]}


def test_corpus_source_maps_hub_split_names(monkeypatch):
    calls = []
    fake = datasets.Dataset.from_dict({"text": ["abc"]})
    monkeypatch.setattr(sources.corpus, "load_corpus", lambda split: calls.append(split) or fake)
    assert sources.load_texts("corpus", "validation") is fake
    assert sources.load_texts("lensbook-corpus", "train") is fake
    assert calls == ["test", "train"]
    with pytest.raises(ValueError, match="splits"):
        sources.load_texts("corpus", "dev")


def test_txt_files_are_one_document_each(tmp_path):
    (tmp_path / "a.txt").write_text("first line\nsecond line\n")
    (tmp_path / "b.txt").write_text("other")
    texts = sources.load_texts(str(tmp_path))
    assert sorted(texts["text"]) == ["first line\nsecond line\n", "other"]
    single = sources.load_texts(str(tmp_path / "b.txt"))
    assert single["text"] == ["other"]


def test_jsonl_with_a_text_column_and_chunking(tmp_path):
    path = tmp_path / "docs.jsonl"
    rows = [{"body": "hello world", "id": 1}, {"body": "é", "id": 2}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    chunks = sources.load_chunks(str(path), ByteTokenizer(), seq_len=4, text_column="body")
    # hello world EOS é(2 bytes) EOS = 11 + 1 + 2 + 1 = 15 tokens -> 3 chunks; 13 bytes
    assert chunks.input_ids.shape == (3, 4)
    assert (chunks.n_tokens, chunks.n_bytes) == (15, 13)
    with pytest.raises(ValueError, match="no column 'text'.*body"):
        sources.load_texts(str(path))


def test_saved_dataset_folder(tmp_path):
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["a b c"]}),
        "test": datasets.Dataset.from_dict({"text": ["held out"]}),
    }).save_to_disk(str(tmp_path / "saved"))
    assert sources.load_texts(str(tmp_path / "saved"), "test")["text"] == ["held out"]


def test_unsupported_local_files_are_named(tmp_path):
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(ValueError, match=r"\.csv"):
        sources.load_texts(str(tmp_path / "x.csv"))


def test_hub_names_go_to_load_dataset_with_streaming(monkeypatch):
    calls = []
    stream = datasets.Dataset.from_dict({"text": ["x" * 50] * 100}).to_iterable_dataset()

    def fake_load_dataset(name, subset, **kwargs):
        calls.append((name, subset, kwargs))
        return stream

    monkeypatch.setattr(sources.datasets, "load_dataset", fake_load_dataset)
    chunks = sources.load_chunks("someone/pile-sample", ByteTokenizer(), seq_len=8,
                                 split="validation", subset="en", streaming=True,
                                 max_tokens=200)
    assert calls == [("someone/pile-sample", "en",
                      {"split": "validation", "streaming": True, "revision": None})]
    assert chunks.input_ids.shape == (25, 8)  # stops reading at the budget
