"""Table 2's two clocks: the step an example is learned and its prediction depth."""

import pytest
import torch

import lensbook
from lensbook.analysis import learned
from lensbook.core.errors import InputError
from lensbook.embedded import checkpoints
from lensbook.embedded.pretrain import PretrainConfig
from tests.tiny_models import make_model, sample_ids


def test_learned_is_right_from_then_on_and_depth_is_the_same_rule_over_layers():
    # Four positions, three checkpoints; targets 5 everywhere.
    ckpt = torch.tensor([[5, 1, 5, 5],    # step 10
                         [1, 5, 5, 2],    # step 20: position 0 forgotten
                         [5, 5, 5, 3]])   # step 30 (final): position 3 wrong
    layers = torch.tensor([[5, 9, 9, 3],
                           [5, 5, 9, 3],
                           [5, 5, 5, 3]])  # the output row: the final model
    table = learned.learned_table(ckpt, {"lens": layers}, torch.full((4,), 5), [10, 20, 30])
    assert table["position"].tolist() == [0, 1, 2]  # position 3: the final model is wrong
    assert table["learned"].tolist() == [30, 20, 10]
    assert table["learned_index"].tolist() == [2, 1, 0]
    assert table["lens"].tolist() == [0, 1, 2]
    rho = learned.depth_vs_learned(table, ["lens"])
    assert rho["lens"] == pytest.approx(-1.0)


def test_a_lens_of_another_model_is_refused():
    ckpt = torch.zeros(2, 2000, dtype=torch.long)
    other = torch.ones(3, 2000, dtype=torch.long)
    with pytest.raises(ValueError, match="last checkpoint"):
        learned.learned_table(ckpt, {"lens": other}, torch.zeros(2000, dtype=torch.long), [1, 2])


def test_checkpoint_top1_loads_each_step_and_matches_the_lens_output_row():
    models = {1: make_model("gpt2", seed=1), 2: make_model("gpt2", seed=0)}
    ids = sample_ids(3, 6)
    top1 = learned.checkpoint_top1(models.__getitem__, [1, 2], ids, batch_size=2)
    assert top1.shape == (2, 3 * 5)
    lens_rows = learned.lens_top1(models[2], lensbook.LogitLens.from_model(models[2]), ids)
    assert lens_rows.shape == (models[2].config.n_layer + 1, 15)
    assert torch.equal(lens_rows[-1], top1[-1])
    with pytest.raises(InputError, match="increasing"):
        learned.checkpoint_top1(models.__getitem__, [2, 1], ids)


CFG = PretrainConfig(vocab_size=97, n_layer=2, n_embd=16, n_head=2, seq_len=16, batch_size=4,
                     steps=6, warmup_steps=1, eval_every=3, eval_chunks=2)


def test_pretrain_checkpoints_keep_the_steps_asked_and_the_final_model():
    data = torch.randint(1, 97, (32, 16), generator=torch.Generator().manual_seed(0))
    model, states = checkpoints.pretrain_checkpoints(data, CFG, [2, 4], eos_id=0)
    assert sorted(states) == [2, 4, 6]
    final = model.state_dict()
    assert all(torch.equal(final[k], states[6][k]) for k in final)
    assert not torch.equal(states[2]["transformer.h.0.mlp.c_fc.weight"],
                           states[6]["transformer.h.0.mlp.c_fc.weight"])
    early = checkpoints.at_checkpoint(model, states[2])
    assert torch.equal(early.state_dict()["lm_head.weight"], states[2]["lm_head.weight"])
    with pytest.raises(InputError, match="1..6"):
        checkpoints.pretrain_checkpoints(data, CFG, [0], eos_id=0)


def test_cached_checkpoints_are_read_back_without_training(tmp_path, monkeypatch):
    data = torch.randint(1, 97, (32, 16), generator=torch.Generator().manual_seed(0))
    model, states = checkpoints.cached_checkpoints(data, CFG, [3], eos_id=0, folder=tmp_path)
    written = sorted(f.name for f in tmp_path.rglob("*") if f.is_file())
    assert written == ["step3.safetensors", "step6.safetensors"]  # no partial files left
    monkeypatch.setattr(checkpoints, "pretrain_checkpoints",
                        lambda *a, **k: pytest.fail("trained again"))
    again, read = checkpoints.cached_checkpoints(data, CFG, [3], eos_id=0, folder=tmp_path)
    assert sorted(read) == [3, 6]
    assert all(torch.equal(states[s][k], read[s][k]) for s in states for k in states[s])
    ids = data[:2]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, again(ids).logits)
    other = checkpoints.cache_key(data + 1, CFG, [3], 0)
    assert other != checkpoints.cache_key(data, CFG, [3], 0)
