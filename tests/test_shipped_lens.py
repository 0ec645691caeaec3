"""The tuned lens shipped with lensbook-tiny beats its logit lens on held-out text."""

import pytest

from lensbook import LogitLens, load_model
from lensbook.analysis.evaluate import evaluate_lenses, pivot
from lensbook.core.files import load_lens
from lensbook.embedded.families import EMBEDDED_MODELS
from lensbook.training.sources import load_chunks

LENS = EMBEDDED_MODELS["lensbook-tiny"] / "lens"


@pytest.fixture(scope="module")
def kl_table():
    model, tokenizer = load_model("lensbook-tiny")
    lens = load_lens(LENS, model)
    held_out = load_chunks("corpus", tokenizer, 256, split="test", max_tokens=32 * 256)
    lenses = {"logit": LogitLens.from_model(model), "tuned": lens}
    return pivot(evaluate_lenses(model, lenses, held_out), "kl")


def test_shipped_lens_is_in_both_formats_with_its_training_record():
    for name in ("config.json", "params.pt", "params.safetensors"):
        assert (LENS / name).exists(), name
    model, _ = load_model("lensbook-tiny")
    record = load_lens(LENS, model).config.training
    assert record["tokens"] > 0 and record["data"]["source"] == "corpus"


def test_tuned_lens_kl_is_lower_at_every_layer_and_at_least_halved_on_average(kl_table):
    assert (kl_table.tuned < kl_table.logit).all(), kl_table
    assert kl_table.logit.mean() >= 2 * kl_table.tuned.mean(), kl_table
