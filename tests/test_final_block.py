"""Lenses through the model's last block (Fig. 4): the replay is the model, on every family."""

import pytest
import torch

import lensbook
from lensbook.analysis import final_block
from lensbook.analysis.metrics import kl_divergence
from lensbook.core.errors import InputError
from lensbook.core.model import num_layers
from lensbook.training.config import TrainConfig
from tests.tiny_models import CONFIGS, make_model, sample_ids


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_logit_lens_through_the_last_block_at_its_input_is_the_model(name):
    model = make_model(name)
    ids = sample_ids(2, 7)
    streams, replay = final_block.capture_last_block(model, ids)
    assert len(streams) == num_layers(model) + 1
    lens = lensbook.LogitLens.from_model(model)
    with torch.no_grad():
        torch.testing.assert_close(replay(streams[-2]), streams[-1], rtol=0, atol=0)
        logits = final_block.decode(lens, len(streams) - 2, streams[-2], replay)
        torch.testing.assert_close(logits, model(ids).logits, rtol=1e-5, atol=1e-5)


def test_replay_follows_the_stream_it_is_given():
    """A different input gives a different output: the block really runs again."""
    model = make_model("llama")
    streams, replay = final_block.capture_last_block(model, sample_ids(2, 6))
    with torch.no_grad():
        assert not torch.allclose(replay(streams[0]), streams[-1])
        assert replay(streams[0]).shape == streams[-1].shape


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = lensbook.load_model("lensbook-tiny")
    chunks = lensbook.load_chunks("corpus", tokenizer, 32, split="test", max_tokens=32 * 24)
    return model, chunks


def test_curves_zero_tuned_lens_equals_the_logit_lens_both_ways(tiny):
    model, chunks = tiny
    lenses = {"logit lens": lensbook.LogitLens.from_model(model),
              "tuned lens": lensbook.TunedLens.from_model(model)}
    frame = final_block.final_block_curves(model, lenses, chunks, batch_size=8)
    assert set(frame.variant) == {final_block.WITH, final_block.WITHOUT, ""}
    assert {"nats/token", "bits/byte"} <= set(frame.unit)
    table = frame.pivot_table(index=["variant", "layer", "metric", "unit"], columns="lens",
                              values="value").dropna()
    torch.testing.assert_close(torch.tensor(table["tuned lens"].values),
                               torch.tensor(table["logit lens"].values), rtol=1e-6, atol=1e-6)
    L = model.config.num_hidden_layers
    nats = frame[frame.unit == "nats/token"]
    last = nats[(nats.lens == "logit lens") & (nats.layer == L - 1)]
    kl = last.set_index(["variant", "metric"])["value"]
    assert kl[(final_block.WITH, "kl")] < 1e-5  # through the last block: the model itself
    out = final_block.model_loss_of(frame, "nats/token")
    assert abs(kl[(final_block.WITH, "ce")] - out) < 1e-4


def test_output_ce_is_the_models_own_loss(tiny):
    model, chunks = tiny
    ids = chunks.input_ids[:3]
    frame = final_block.final_block_curves(model, {"logit lens": lensbook.LogitLens.from_model(
        model)}, ids, batch_size=3)
    with torch.no_grad():
        loss = model(ids, labels=ids).loss.item()
    ce = frame[(frame.lens == "output") & (frame.metric == "ce")]["value"].item()
    assert abs(ce - loss) < 1e-5


def test_training_through_the_block_lowers_its_kl_and_leaves_the_model_alone(tiny):
    model, chunks = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    lens = lensbook.TunedLens.from_model(model)
    config = TrainConfig(steps=6, tokens_per_step=128, seq_len=32, batch_size=2, seed=0)
    losses = final_block.fit_through_final_block(model, lens, chunks.input_ids[:24], config)
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [p.requires_grad for p in model.parameters()] == flags
    ids = chunks.input_ids[:2]
    streams, replay = final_block.capture_last_block(model, ids)
    logit = lensbook.LogitLens.from_model(model)
    with torch.no_grad():
        log_p = torch.log_softmax(model(ids).logits, -1)
        trained, plain = (kl_divergence(log_p, torch.log_softmax(
            final_block.decode(lns, 0, streams[0], replay), -1)).mean() for lns in (lens, logit))
    assert trained < plain


def test_bad_input_is_refused(tiny):
    model, chunks = tiny
    with pytest.raises(InputError, match="no lenses"):
        final_block.final_block_curves(model, {}, chunks)
    lens = lensbook.TunedLens.from_model(model)
    config = TrainConfig(steps=100, tokens_per_step=128, seq_len=32, batch_size=2)
    with pytest.raises(InputError, match="chunks"):
        final_block.fit_through_final_block(model, lens, chunks.input_ids[:4], config)
    sub = lensbook.LogitLens.from_model(model, sublayers=True)
    with pytest.raises(InputError, match="residual layers"):
        final_block.final_block_curves(model, {"sub": sub}, chunks)


def test_curves_and_gap_closed():
    import pandas as pd
    frame = pd.DataFrame([
        ("logit lens", final_block.WITHOUT, 0, "ce", 5.0, "bits/byte"),
        ("logit lens", final_block.WITH, 0, "ce", 3.0, "bits/byte"),
        ("logit lens", final_block.WITHOUT, 0, "kl", 4.0, "bits/byte"),
        ("output", "", 1, "ce", 1.0, "bits/byte")],
        columns=["lens", "variant", "layer", "metric", "value", "unit"])
    curves = final_block.curves_of(frame)
    assert list(curves.columns) == ["lens", "variant", "layer", "value"] and len(curves) == 2
    assert final_block.model_loss_of(frame) == 1.0
    assert final_block.gap_closed(curves, 1.0, "logit lens").loc[0] == 0.5
