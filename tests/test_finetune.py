"""Fine-tuning a copy of a model (the base/fine-tune pair of the paper's Fig. 13)."""

import datasets
import pytest
import torch

from lensbook import filter_texts, finetune, output_kl
from lensbook.embedded.pretrain import mean_loss
from tests.tiny_models import VOCAB, make_model


def _slice_ids(n: int = 16, seq: int = 16) -> torch.Tensor:
    """A narrow 'slice' of text: a short repeating pattern of a few tokens."""
    pattern = torch.tensor([5, 9, 13, 9, 21, 7])
    start = torch.arange(n).unsqueeze(1) + torch.arange(seq)
    return pattern[start % len(pattern)]


@pytest.fixture
def base():
    return make_model("gpt2")


def test_finetune_lowers_the_loss_on_the_slice(base):
    ids = _slice_ids()
    tuned = finetune(base, ids, steps=15, lr=3e-3)
    assert mean_loss(tuned, ids) < 0.5 * mean_loss(base, ids)
    assert output_kl(tuned, base, ids) > 0.1


def test_finetune_leaves_the_input_model_untouched(base):
    before = {k: v.clone() for k, v in base.state_dict().items()}
    tuned = finetune(base, _slice_ids(), steps=3)
    after = base.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "fine-tuning changed no weight"
    assert not base.training and not tuned.training


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox"])  # tied and untied head
def test_frozen_embeddings_stay_and_the_blocks_still_learn(arch):
    base, ids = make_model(arch), _slice_ids()
    tuned = finetune(base, ids, steps=15, lr=3e-3, freeze_embeddings=True)
    for get in ("get_input_embeddings", "get_output_embeddings"):
        assert torch.equal(getattr(tuned, get)().weight, getattr(base, get)().weight), get
    assert mean_loss(tuned, ids) < 0.8 * mean_loss(base, ids)


def test_finetune_is_deterministic_and_keeps_the_caller_rng(base):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    one = finetune(base, _slice_ids(), steps=3, seed=4).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    two = finetune(base, _slice_ids(), steps=3, seed=4).state_dict()
    other = finetune(base, _slice_ids(), steps=3, seed=5).state_dict()
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert any(not torch.equal(one[k], other[k]) for k in one)


def test_finetune_refuses_too_few_chunks(base):
    with pytest.raises(ValueError, match="batch_size=4"):
        finetune(base, _slice_ids(n=2), steps=3)


def test_output_kl_is_zero_for_the_same_model(base):
    ids = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(0))
    assert output_kl(base, base, ids) == pytest.approx(0.0, abs=1e-6)
    assert output_kl(base, make_model("gpt2", seed=1), ids) > 0
    other = make_model("gpt2", seed=1)  # batches sized by memory give the same mean
    assert output_kl(base, other, ids, chunk_mb=0.001) == pytest.approx(
        output_kl(base, other, ids, batch_size=len(ids)), rel=1e-5)


def test_filter_texts_follows_dotted_fields():
    texts = datasets.Dataset.from_list([
        {"text": "a", "kind": "topic", "meta": {"pile_set_name": "Github"}},
        {"text": "b", "kind": "src", "meta": {"pile_set_name": "Pile-CC"}},
    ])
    assert filter_texts(texts, "kind", "topic")["text"] == ["a"]
    assert filter_texts(texts, "meta.pile_set_name", "Pile-CC")["text"] == ["b"]
