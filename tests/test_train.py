"""Training: the blockwise objective equals plain autograd; loop, schedule, resume, failures."""

import math

import pytest
import torch
from torch import nn

from lensbook import TunedLens, hidden_states
from lensbook.training.checkpoint import load_checkpoint
from lensbook.training.config import TrainConfig
from lensbook.training.loop import (
    InsufficientDataError,
    NonFiniteLossError,
    train_lens,
)
from lensbook.training.objective import KLObjective, default_chunk_mb, plan_blocks, vocab_tile
from lensbook.training.optim import build_optimizer, lr_factor
from tests.tiny_models import VOCAB, make_model, sample_ids

SEQ = 16


def random_ids(n_chunks=64, seq=SEQ, seed=0):
    return torch.randint(1, VOCAB, (n_chunks, seq), generator=torch.Generator().manual_seed(seed))


def small_config(**overrides):
    fields = dict(steps=6, tokens_per_step=4 * SEQ, seq_len=SEQ, batch_size=2, progress=False)
    return TrainConfig(**(fields | overrides))


def randomized_lens(model, seed=0):
    lens = TunedLens.from_model(model)
    torch.manual_seed(seed)
    with torch.no_grad():
        for t in lens.translators:
            t.weight.normal_(0, 0.05)
            t.bias.normal_(0, 0.05)
    return lens


def naive_kl(model, lens, ids):
    """Per-layer mean KL(final ‖ lens) with full tensors and plain autograd."""
    out = model(ids, output_hidden_states=True)
    logp = torch.log_softmax(out.logits.float(), -1)
    per_layer = []
    for layer in range(lens.num_layers):
        logq = torch.log_softmax(lens(out.hidden_states[layer], layer).float(), -1)
        per_layer.append((logp.exp() * (logp - logq)).sum(-1).mean())
    return torch.stack(per_layer)


def blockwise_kl(model, lens, ids, chunk_mb, tile=None):
    objective = KLObjective(lens, chunk_mb=chunk_mb, tile=tile)
    return objective.accumulate(hidden_states(model, ids), scale=1 / ids.numel()) / ids.numel()


def grads(lens):
    return [p.grad.clone() for p in lens.trainable_parameters()]


@pytest.mark.parametrize("arch", ["gpt2", "gemma2", "opt_350m_style", "llama"])
@pytest.mark.parametrize("chunk_mb", [1e-3, 256.0])
def test_blockwise_kl_and_gradient_equal_plain_autograd(arch, chunk_mb):
    model = make_model(arch)
    lens = randomized_lens(model)
    ids = sample_ids(batch=3, seq=9)
    expected = naive_kl(model, lens, ids)
    expected.sum().backward()
    want = grads(lens)
    lens.zero_grad()
    got = blockwise_kl(model, lens, ids, chunk_mb)
    torch.testing.assert_close(got, expected.detach(), rtol=1e-4, atol=1e-5)
    for g, w in zip(grads(lens), want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("arch", ["gpt2", "opt_350m_style"])
@pytest.mark.parametrize("tile", [1, 10, 64])
def test_vocabulary_tiles_give_the_one_pass_kl_and_gradient(arch, tile):
    model = make_model(arch)
    lens = randomized_lens(model)
    ids = sample_ids(batch=3, seq=9)
    hs = hidden_states(model, ids)
    whole = KLObjective(lens, tile=VOCAB)
    expected = whole.accumulate(hs, scale=1.0)
    want = grads(lens)
    lens.zero_grad()
    got = KLObjective(lens, tile=tile).accumulate(hs, scale=1.0)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for g, w in zip(grads(lens), want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)


def test_vocabulary_tiles_fit_the_cache_on_the_cpu_only():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert vocab_tile(cpu, 256, 50_257) == 2048  # 256 x 2048 float32 logits: 2 MiB
    assert vocab_tile(cpu, 512, 4096) == 1024
    assert vocab_tile(cpu, 10**6, 50_257) == 256  # never fewer columns than this
    assert vocab_tile(cpu, 1, 4096) == 4096  # never more than the vocabulary
    assert vocab_tile(gpu, 256, 50_257) == 50_257


@pytest.mark.parametrize("tile", [None, 10])
def test_blockwise_kl_with_an_output_bias(tile):
    model = make_model("gpt2")
    lens = randomized_lens(model)
    head = lens.unembed.unembed
    biased = nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.normal_(0, 1.0)
    lens.unembed.unembed = biased.requires_grad_(False)
    ids = sample_ids(batch=2, seq=5)
    out = model(ids, output_hidden_states=True)
    logp = torch.log_softmax(biased(out.hidden_states[-1]), -1)
    logq = torch.log_softmax(lens(out.hidden_states[1], 1), -1)
    expected = (logp.exp() * (logp - logq)).sum(-1).mean()
    got = blockwise_kl(model, lens, ids, chunk_mb=1e-3, tile=tile)[1]
    assert got.item() == pytest.approx(expected.item(), rel=1e-4)


def test_plan_blocks_bounds_logit_memory():
    assert plan_blocks(4096, 6, 4096, 256) == (2730, 6)  # all layers in one matmul
    assert plan_blocks(4096, 6, 4096, 8) == (256, 2)  # cache-sized blocks
    tokens, layers = plan_blocks(10**6, 32, 256_000, 256)
    assert (tokens, layers) == (262, 1) and tokens * 256_000 * 4 <= 256 * 2**20
    assert default_chunk_mb(torch.device("cpu"), 4096) == 8
    assert default_chunk_mb(torch.device("cpu"), 256_000) == 250


def test_loss_goes_down_on_every_layer():
    model = make_model("gpt2")
    _, history = train_lens(model, random_ids(), small_config(steps=15))
    first, last = history.loss[0], history.loss[-1]
    assert all(b < 0.7 * a for a, b in zip(first, last, strict=True))
    frame = history.to_frame()
    assert list(frame.columns[:3]) == ["step", "layer", "kl"] and len(frame) == 15 * 3


def test_sgd_effective_lr_and_linear_decay_to_zero():
    config = small_config()
    opt = build_optimizer([nn.Parameter(torch.zeros(2))], config)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)  # 1.0 x (1 - 0.9)
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["weight_decay"] == 1e-3
    factors = [lr_factor(s, 4, 0) for s in range(4)]
    assert factors == [1.0, 0.75, 0.5, 0.25]


def test_adam_warmup_really_ramps_the_lr():
    model = make_model("gpt2")
    config = small_config(optimizer="adam", steps=10, warmup_steps=4)
    _, history = train_lens(model, random_ids(), config)
    lr = history.lr
    assert lr[:5] == pytest.approx([1e-3 * k / 5 for k in (1, 2, 3, 4)] + [1e-3])
    assert all(b < a for a, b in zip(lr[4:], lr[5:], strict=False))
    assert TrainConfig(optimizer="adamw", steps=100).effective_warmup == 20


def test_bias_only_changes_only_biases():
    model = make_model("gpt2")
    lens = TunedLens.from_model(model, bias_only=True)
    lens, history = train_lens(model, random_ids(), small_config(), lens=lens)
    assert all(t.weight.abs().max() == 0 for t in lens.translators)
    assert all(t.bias.abs().max() > 0 for t in lens.translators)
    assert history.loss[-1][0] < history.loss[0][0]


@pytest.mark.parametrize("optimizer", [
    {},  # the paper's SGD
    pytest.param({"optimizer": "muon", "lr": 1e-2}, marks=pytest.mark.skipif(
        not hasattr(torch.optim, "Muon"), reason="this torch has no torch.optim.Muon")),
], ids=["sgd", "muon"])
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, optimizer):
    model, ids = make_model("gpt2"), random_ids()
    full, full_history = train_lens(model, ids, small_config(**optimizer))

    def interrupt(step, history):
        if step == 4:
            raise KeyboardInterrupt

    config = small_config(checkpoint_dir=str(tmp_path), checkpoint_every=2, resume=True,
                          **optimizer)
    with pytest.raises(KeyboardInterrupt):
        train_lens(model, ids, config, on_step=interrupt)
    assert load_checkpoint(tmp_path)["step"] == 4
    resumed, history = train_lens(model, ids, config)
    for a, b in zip(full.translators.parameters(), resumed.translators.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(full_history.loss))


def test_resume_refuses_a_different_run(tmp_path):
    model, ids = make_model("gpt2"), random_ids()
    train_lens(model, ids, small_config(steps=2, checkpoint_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="steps: checkpoint 2 vs now 3"):
        train_lens(model, ids, small_config(steps=3, checkpoint_dir=str(tmp_path), resume=True))


def test_nan_stops_with_layer_and_step_and_keeps_the_good_checkpoint(tmp_path):
    model = make_model("gpt2")

    def poison(step, history):
        if step == 2:
            with torch.no_grad():
                lens.translators[1].weight.fill_(float("nan"))

    lens = TunedLens.from_model(model)
    config = small_config(checkpoint_dir=str(tmp_path), checkpoint_every=1)
    with pytest.raises(NonFiniteLossError, match=r"layer 1 is nan at step 3.*last\.pt"):
        train_lens(model, random_ids(), config, lens=lens, on_step=poison)
    state = load_checkpoint(tmp_path)
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["translators"].values())


def test_too_little_data_fails_before_any_step_naming_both_numbers():
    model = make_model("gpt2")
    calls = []
    config = small_config(steps=20)  # 20 x 64 = 1,280 tokens
    with pytest.raises(InsufficientDataError, match=r"holds 1,024 tokens.*need 1,280 tokens"):
        train_lens(model, random_ids(n_chunks=64), config, on_step=lambda *a: calls.append(a))
    assert not calls
    with pytest.raises(ValueError, match="seq_len=32"):
        train_lens(model, random_ids(), small_config(seq_len=32, tokens_per_step=64))


def test_training_record_lands_in_the_lens_config():
    model = make_model("gpt2")
    lens, history = train_lens(model, random_ids(), small_config(steps=2))
    record = lens.config.training
    assert record["steps"] == 2 and record["tokens"] == 2 * 4 * SEQ
    assert all(math.isfinite(v) for v in record["final_kl_nats"])


def test_final_logits_from_the_last_hidden_state_equal_the_models(tiny_model):
    lens = TunedLens.from_model(tiny_model)
    ids = sample_ids().to(tiny_model.device)
    hs = hidden_states(tiny_model, ids)
    expected = tiny_model(ids).logits.float()
    got = KLObjective(lens).logits(hs[-1].reshape(-1, hs[-1].shape[-1]))
    torch.testing.assert_close(got, expected.reshape(got.shape), rtol=1e-4, atol=1e-4)
