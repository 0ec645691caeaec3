"""Evaluation metrics against an independent full-tensor computation; transfer matrix."""

import json
import math

import pandas as pd
import pytest
import torch

from lensbook import LogitLens, TunedLens
from lensbook.analysis.evaluate import (
    evaluate_lenses,
    pivot,
    save_metrics,
    unigram_cross_entropy,
)
from lensbook.analysis.transfer import transfer_matrix
from lensbook.training.data import TokenChunks
from tests.tiny_models import VOCAB, make_model

FACTOR_TOKENS, FACTOR_BYTES = 300, 1000


@pytest.fixture(scope="module")
def setup():
    model = make_model("gpt2")
    tuned = TunedLens.from_model(model)
    bias_only = TunedLens.from_model(model, bias_only=True)
    torch.manual_seed(0)
    with torch.no_grad():
        for t in tuned.translators:
            t.weight.normal_(0, 0.1)
            t.bias.normal_(0, 0.1)
        for t in bias_only.translators:
            t.bias.normal_(0, 0.3)
    ids = torch.randint(1, VOCAB, (5, 12), generator=torch.Generator().manual_seed(3))
    chunks = TokenChunks(ids, n_tokens=FACTOR_TOKENS, n_bytes=FACTOR_BYTES)
    lenses = {"logit": LogitLens.from_model(model), "tuned": tuned, "bias-only": bias_only}
    return model, lenses, chunks


def expected_metrics(model, lens, ids, layer):
    """Full tensors, written out from the definitions without lensbook.metrics."""
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
        p = torch.softmax(out.logits.float(), -1)
        q = torch.softmax(lens(out.hidden_states[layer], layer).float(), -1)
    kl = (p * (p.log() - q.log())).sum(-1).mean()
    ce = -q[:, :-1].gather(-1, ids[:, 1:, None]).log().mean()
    entropy = -(q * q.log()).sum(-1).mean()
    top1 = (q.argmax(-1) == p.argmax(-1)).float().mean()
    pm, qm = p.mean((0, 1)), q.mean((0, 1))
    bias = (pm * (pm.log() - qm.log())).sum()
    return {"kl": kl, "ce": ce, "entropy": entropy, "top1_agreement": top1, "bias": bias}


def value(frame, lens, layer, metric, unit):
    row = frame[(frame.lens == lens) & (frame.layer == layer) & (frame.metric == metric)
                & (frame.unit == unit)]
    assert len(row) == 1
    return row.value.item()


@pytest.mark.parametrize("chunk_mb", [1e-3, 256.0])
def test_metrics_equal_an_independent_computation(setup, chunk_mb):
    model, lenses, chunks = setup
    frame = evaluate_lenses(model, lenses, chunks, batch_size=2, chunk_mb=chunk_mb)
    assert list(frame.columns) == ["lens", "layer", "metric", "value", "unit"]
    factor = chunks.bits_per_byte_factor
    for name, lens in lenses.items():
        for layer in range(3):
            want = expected_metrics(model, lens, chunks.input_ids, layer)
            for metric, unit in [("kl", "nats/token"), ("ce", "nats/token"),
                                 ("entropy", "nats/token"), ("top1_agreement", "fraction"),
                                 ("bias", "nats")]:
                got = value(frame, name, layer, metric, unit)
                assert got == pytest.approx(want[metric].item(), rel=1e-4, abs=1e-6)
            kl_bpb = value(frame, name, layer, "kl", "bits/byte")
            assert kl_bpb == pytest.approx(want["kl"].item() * factor, rel=1e-4)
            assert value(frame, name, layer, "bias", "bits") == pytest.approx(
                want["bias"].item() / 0.6931471805599453, rel=1e-4, abs=1e-6)


def test_output_row_is_the_models_own_loss(setup):
    model, lenses, chunks = setup
    frame = evaluate_lenses(model, {"logit": lenses["logit"]}, chunks)
    with torch.no_grad():
        loss = model(chunks.input_ids, labels=chunks.input_ids).loss.item()
    assert value(frame, "output", 3, "ce", "nats/token") == pytest.approx(loss, rel=1e-5)
    table = pivot(frame, "ce")
    assert list(table.columns) == ["logit", "output"] and list(table.index) == [0, 1, 2, 3]


def test_transfer_matrix_diagonal_is_the_lens_ce_and_entries_match(setup):
    model, lenses, chunks = setup
    tuned = lenses["tuned"]
    frame = transfer_matrix(model, tuned, chunks)
    ce = frame[(frame.metric == "ce") & (frame.unit == "nats/token")].pivot(
        index="translator", columns="layer", values="value")
    own = evaluate_lenses(model, {"tuned": tuned}, chunks)
    for j in range(3):
        assert ce.loc[j, j] == pytest.approx(value(own, "tuned", j, "ce", "nats/token"), rel=1e-5)
    ids = chunks.input_ids
    with torch.no_grad():
        h = model(ids, output_hidden_states=True).hidden_states[2]
        logq = torch.log_softmax(tuned.unembed(tuned.transform_hidden(h, 0)), -1)
    manual = -logq[:, :-1].gather(-1, ids[:, 1:, None]).mean().item()
    assert ce.loc[0, 2] == pytest.approx(manual, rel=1e-5)
    penalty = frame[(frame.metric == "penalty") & (frame.unit == "bits/byte")]
    assert penalty[penalty.translator == penalty.layer].value.abs().max() < 1e-9


def test_save_metrics_writes_csv_and_json(setup, tmp_path):
    model, lenses, chunks = setup
    frame = evaluate_lenses(model, {"logit": lenses["logit"]}, chunks)
    csv, js = save_metrics(frame, tmp_path / "out" / "metrics")
    pd.testing.assert_frame_equal(pd.read_csv(csv), frame)
    assert len(json.loads(js.read_text())) == len(frame)


def test_unigram_cross_entropy_is_the_loss_of_smoothed_token_frequencies():
    train = torch.tensor([[0, 0, 0, 1]])  # counts + 1: 4, 2, 1 of 7 (vocabulary 3)
    test = torch.tensor([[2, 0, 1], [1, 2, 0]])  # next tokens 0, 1, 2, 0
    expected = -(2 * math.log(4 / 7) + math.log(2 / 7) + math.log(1 / 7)) / 4
    assert unigram_cross_entropy(train, test, 3) == pytest.approx(expected)
