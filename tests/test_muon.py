"""Muon as a tuned-lens optimiser: matrices to torch's Muon, biases to AdamW, one schedule."""

import pytest
import torch

from lensbook import TunedLens
from lensbook.cli import build_parser
from lensbook.training.config import TrainConfig
from lensbook.training.loop import train_lens
from lensbook.training.optim import MuonAdamW, build_optimizer
from tests.tiny_models import VOCAB, make_model

SEQ = 16
needs_muon = pytest.mark.skipif(not hasattr(torch.optim, "Muon"),
                                reason="this torch has no torch.optim.Muon")


def random_ids(n_chunks=64, seed=0):
    return torch.randint(1, VOCAB, (n_chunks, SEQ), generator=torch.Generator().manual_seed(seed))


def muon_config(**overrides):
    fields = dict(steps=6, tokens_per_step=4 * SEQ, seq_len=SEQ, batch_size=2, progress=False,
                  optimizer="muon", lr=1e-2)
    return TrainConfig(**(fields | overrides))


@needs_muon
def test_matrices_go_to_muon_and_biases_to_adamw():
    lens = TunedLens.from_model(make_model("gpt2"))
    opt = build_optimizer(lens.trainable_parameters(), muon_config())
    assert isinstance(opt, MuonAdamW)
    muon, adamw = opt.parts
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    assert {id(p) for p in muon.param_groups[0]["params"]} == {
        id(t.weight) for t in lens.translators}
    assert {id(p) for p in adamw.param_groups[0]["params"]} == {
        id(t.bias) for t in lens.translators}
    assert opt.param_groups[0] is muon.param_groups[0]  # one scheduler drives both
    assert muon.param_groups[0]["adjust_lr_fn"] == "match_rms_adamw"


@needs_muon
def test_loss_goes_down_and_the_schedule_reaches_both_parts():
    model = make_model("gpt2")
    config = muon_config(steps=12, warmup_steps=2, lr=0.1)
    lens, history = train_lens(model, random_ids(), config)
    assert all(b < 0.5 * a for a, b in zip(history.loss[0], history.loss[-1], strict=True))
    assert history.lr[:3] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1])
    assert all(t.weight.abs().max() > 0 and t.bias.abs().max() > 0 for t in lens.translators)


@needs_muon
def test_muon_steps_are_orthogonalised():
    """One Muon step on a zero matrix moves it by a near-orthogonal update."""
    weight = torch.nn.Parameter(torch.zeros(32, 32))
    opt = MuonAdamW([weight], lr=0.1, momentum=0.0, weight_decay=0.0)
    weight.grad = torch.randn(32, 32, generator=torch.Generator().manual_seed(0))
    opt.step()
    singular = torch.linalg.svdvals(weight.detach())
    assert singular.max() / singular.min() < 3  # plain SGD would keep the gradient's spread
    assert torch.linalg.cond(weight.grad) > 10


@needs_muon
def test_bias_only_lens_with_muon_uses_adamw_alone():
    model = make_model("gpt2")
    lens = TunedLens.from_model(model, bias_only=True)
    lens, history = train_lens(model, random_ids(), muon_config(), lens)
    assert all(t.weight.abs().max() == 0 for t in lens.translators)
    assert history.lr[0] == pytest.approx(1e-2 / 2)  # warm-up 1 of min(1000, 6 // 5)


# Resuming a Muon run: tests/test_train.py's resume test, parametrised by optimizer.


def test_missing_muon_is_a_clear_error(monkeypatch):
    monkeypatch.delattr(torch.optim, "Muon", raising=False)
    lens = TunedLens.from_model(make_model("gpt2"))
    with pytest.raises(RuntimeError, match=r"torch\.optim\.Muon.*PyTorch 2\.9"):
        build_optimizer(lens.trainable_parameters(), muon_config())


def test_cli_offers_muon():
    args = build_parser().parse_args(["train", "--optimizer", "muon", "--output", "x"])
    assert args.optimizer == "muon"
    assert TrainConfig(optimizer="muon").effective_lr > 0
