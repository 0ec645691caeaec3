"""The embedded default model: the build pipeline end to end, and the shipped folder."""

import json
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lensbook import build_default, corpus
from lensbook.data import chunk_texts
from lensbook.pretrain import mean_loss

SHIPPED = Path(build_default.__file__).parent / "assets" / "lensbook-tiny"
# Fixed held-out subset for the acceptance check: the test split's documents, in
# order, up to 450k characters. With Python 3.11 that is the whole split (443,596
# characters, 125,696 tokens in chunks), the same text the card reports on.
EVAL_CHARS = 450_000
MAX_BITS_PER_BYTE = 1.6


def test_fast_pipeline_end_to_end(tmp_path):
    start = time.time()
    info = build_default.main(["--fast", "--out", str(tmp_path)])
    assert time.time() - start < 60
    for name in ("config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "README.md", "training_log.json"):
        assert (tmp_path / name).is_file(), name
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model.config.n_layer == build_default.FAST_CONFIG.n_layer
    total = info["eval"]["all"]
    assert 0 < total["nats_per_token"] < torch.log(torch.tensor(512.0)).item()
    assert total["bits_per_byte"] == pytest.approx(
        json.loads((tmp_path / "training_log.json").read_text())["eval"]["all"]["bits_per_byte"])
    assert "--fast" in (tmp_path / "README.md").read_text()


@pytest.fixture(scope="module")
def shipped():
    model = AutoModelForCausalLM.from_pretrained(SHIPPED).eval()
    tokenizer = AutoTokenizer.from_pretrained(SHIPPED)
    return model, tokenizer


def test_shipped_folder_is_small_and_complete():
    assert (SHIPPED / "model.safetensors").stat().st_size <= 30 * 2**20
    card = (SHIPPED / "README.md").read_text()
    for section in ("## Corpus", "## Held-out loss", "## Greedy samples",
                    "## Tokenizer compatibility", "## Tuned lens", "## Rebuild"):
        assert section in card


def test_tokenizer_returns_ids_and_mask_only(shipped):
    model, tokenizer = shipped
    enc = tokenizer(["The for statement", "def f(x):"], padding=True)
    assert sorted(enc.keys()) == ["attention_mask", "input_ids"]
    eos = tokenizer.eos_token_id
    assert eos == model.config.eos_token_id == model.config.bos_token_id
    assert tokenizer.pad_token_id == eos
    assert tokenizer.decode(tokenizer("naïve café ✓")["input_ids"]) == "naïve café ✓"


def test_shipped_model_is_a_real_six_layer_gpt2(shipped):
    model, _ = shipped
    assert model.config.model_type == "gpt2"
    assert model.config.n_layer >= 6
    assert model.config.vocab_size == 4096


@pytest.mark.slow
def test_shipped_model_held_out_bits_per_byte(shipped):
    model, tokenizer = shipped
    docs = corpus.load_corpus("test", max_chars=EVAL_CHARS)
    chunks = chunk_texts(docs, tokenizer, seq_len=model.config.n_positions)
    assert chunks.input_ids.numel() >= 100_000
    bits = mean_loss(model, chunks.input_ids) * chunks.bits_per_byte_factor
    assert bits <= MAX_BITS_PER_BYTE
