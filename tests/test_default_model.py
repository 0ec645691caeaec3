"""The embedded default model: the build pipeline end to end, and the shipped folder."""

import csv
import dataclasses
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lensbook import load_model
from lensbook.embedded import build as build_default
from lensbook.embedded import corpus
from lensbook.embedded.card import render_card
from lensbook.embedded.families import EMBEDDED_MODELS
from lensbook.embedded.pretrain import make_model, mean_loss
from lensbook.training.data import chunk_texts

SHIPPED = EMBEDDED_MODELS["lensbook-tiny"]
# Fixed held-out subset for the acceptance check: the test split's documents, in
# order, up to 450k characters. With Python 3.11 that is the whole split (443,596
# characters, 125,696 tokens in chunks), the same text the card reports on.
EVAL_CHARS = 450_000
MAX_BITS_PER_BYTE = 1.6


def test_fast_pipeline_end_to_end(tmp_path):
    info = build_default.main(["--fast", "--out", str(tmp_path)])
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


SIBLINGS = {"lensbook-mini": ("gpt2", 4), "lensbook-nano": ("gpt2", 3),
            "lensbook-nano-neo": ("gpt_neo", 3), "lensbook-nano-opt": ("opt", 3)}


@pytest.mark.parametrize("family", ["gpt2", "gpt_neo", "opt"])
def test_make_model_builds_each_family(family):
    cfg = dataclasses.replace(build_default.FAST_CONFIG, family=family, n_layer=3)
    model = make_model(cfg, eos_id=0)
    assert model.config.model_type == family
    assert model.config.num_hidden_layers == 3
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown family 'mamba'"):
        make_model(dataclasses.replace(build_default.FAST_CONFIG, family="mamba"), eos_id=0)


def test_model_names():
    assert build_default.model_name("tiny") == "lensbook-tiny"
    assert build_default.model_name("nano", "gpt_neo") == "lensbook-nano-neo"
    assert build_default.model_name("nano", "opt") == "lensbook-nano-opt"


@pytest.mark.parametrize("name", sorted(SIBLINGS))
def test_shipped_siblings(name):
    family, layers = SIBLINGS[name]
    model, _ = load_model(name)
    assert model.config.model_type == family
    assert model.config.num_hidden_layers == layers
    log = json.loads((EMBEDDED_MODELS[name] / "training_log.json").read_text())
    tiny = json.loads((SHIPPED / "training_log.json").read_text())
    assert log["n_params"] < tiny["n_params"]
    assert log["training"]["tokens"] >= 0.95 * tiny["training"]["tokens"], "same data budget"
    assert log["corpus"]["fingerprint"] == tiny["corpus"]["fingerprint"]
    with (EMBEDDED_MODELS[name] / "lens" / "metrics.csv").open() as f:
        kl = {(r["lens"], r["layer"]): float(r["value"]) for r in csv.DictReader(f)
              if r["metric"] == "kl" and r["unit"] == "nats/token"}
    layers_seen = {layer for _, layer in kl}
    assert len(layers_seen) == layers
    assert all(kl[("tuned", layer)] < kl[("logit", layer)] for layer in layers_seen)


def test_card_names_the_model_and_its_architecture():
    info = json.loads((SHIPPED / "training_log.json").read_text())
    with (SHIPPED / "lens" / "metrics.csv").open() as f:
        metrics = list(csv.DictReader(f))
    info = {**info, "name": "lensbook-nano-opt", "config": {**info["config"], "family": "opt"},
            "lens_metrics": metrics}
    card = render_card(info)
    assert "\n# lensbook-nano-opt\n" in card
    assert "M-parameter OPT that" in card and "OPT architecture (`OPTForCausalLM`" in card
    assert "--model lensbook-nano-opt" in card  # the lens's rebuild command
