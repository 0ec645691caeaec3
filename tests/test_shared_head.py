"""The lens shares the model's output head: one storage, frozen, never written to."""

import torch

from lensbook import LogitLens, TunedLens, load_lens, save_lens
from lensbook.analysis.evaluate import evaluation_memory
from lensbook.core.parts import find_parts
from lensbook.training.config import TrainConfig
from lensbook.training.loop import train_lens, training_memory
from tests.tiny_models import VOCAB, make_model


def _head_tensors(module):
    parts = find_parts(module) if hasattr(module, "config") else module
    return [parts.final_norm.weight, parts.unembed.weight]


def test_one_storage_for_the_model_head_and_every_lens():
    model = make_model("llama")
    lenses = [TunedLens.from_model(model), TunedLens.from_model(model, bias_only=True),
              LogitLens.from_model(model)]
    heads = _head_tensors(model)
    for lens in lenses:
        mine = [lens.unembed.final_norm.weight, lens.unembed.weight]
        assert [t.data_ptr() for t in mine] == [t.data_ptr() for t in heads]
        assert not any(t.requires_grad for t in lens.unembed.parameters())
    assert all(p.requires_grad for p in model.parameters()), "the model's flags were changed"


def test_training_never_writes_to_the_shared_head_and_the_hash_is_unchanged(tmp_path):
    model = make_model("gpt2")
    before = [t.clone() for t in _head_tensors(model)]
    lens = TunedLens.from_model(model)
    digest = lens.unembed.content_hash()
    ids = torch.randint(1, VOCAB, (16, 8), generator=torch.Generator().manual_seed(0))
    train_lens(model, ids, TrainConfig(steps=2, tokens_per_step=32, seq_len=8, batch_size=2,
                                       progress=False), lens)
    for old, new in zip(before, _head_tensors(model), strict=True):
        assert torch.equal(old, new)
    assert lens.unembed.content_hash() == digest
    save_lens(lens, tmp_path / "lens")
    loaded = load_lens(tmp_path / "lens", model)
    assert loaded.unembed.weight.data_ptr() == model.lm_head.weight.data_ptr()
    assert loaded.config.unembed_sha256 == digest


def test_moving_a_lens_leaves_the_model_alone():
    model = make_model("gpt2")
    lens = TunedLens.from_model(model).to(torch.float64)
    assert lens.unembed.weight.dtype == torch.float64
    assert model.lm_head.weight.dtype == torch.float32


def test_memory_estimates_count_the_shared_head_once():
    model = make_model("llama")
    lens = TunedLens.from_model(model)
    config = TrainConfig(steps=1, tokens_per_step=64, seq_len=8, dtype="float32")
    train = training_memory(model, lens, config)
    assert train.parts["head copies"] == 0
    translators = sum(p.numel() * 4 for p in lens.trainable_parameters())
    assert train.parts["lens"] == 3 * translators  # weights, gradients, momentum
    assert str(train).startswith("memory estimate (training): model ")
    bf16 = training_memory(model, lens, TrainConfig(steps=1, tokens_per_step=64, seq_len=8,
                                                    dtype="bfloat16"))
    assert bf16.parts["head copies"] == lens.unembed.weight.numel() * 2
    evaluation = evaluation_memory(model, {"logit": LogitLens.from_model(model), "tuned": lens},
                                   seq_len=8)
    assert evaluation.parts["lenses"] == translators
    assert "\n" not in str(evaluation)
