"""Trajectories, their statistics against independent definitions, and token labels."""

import math

import numpy as np
import pytest
import torch

from lensbook import (
    LogitLens,
    Trajectory,
    TunedLens,
    context_length,
    layer_logits,
    trajectories_by_lens,
    trajectories_from_ids,
    trajectory,
)
from lensbook.analysis import statistic
from lensbook.analysis.metrics import js_divergence, total_variation
from lensbook.analysis.statistic import STATISTICS, get_statistic
from lensbook.core.tokens import readable_token, token_text, vocabulary
from tests.tiny_models import VOCAB, make_model
from tests.tiny_tokenizer import make_tokenizer

PROMPT = "The cat sat on the mat"


@pytest.fixture(scope="module")
def setup():
    model = make_model("gpt2")
    return model, make_tokenizer(), LogitLens.from_model(model)


@pytest.fixture(scope="module")
def traj(setup):
    return trajectory(*setup, PROMPT)


def perturbed_tuned_lens(model, seed=0):
    lens = TunedLens.from_model(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for translator in lens.translators:
            translator.weight.copy_(0.3 * torch.randn(translator.weight.shape, generator=generator))
    return lens


# Building ---------------------------------------------------------------------------------
def test_shapes_tokens_targets(traj):
    assert traj.log_probs.shape == (4, 7, VOCAB)  # 3 blocks + output, BOS + 6 words
    assert traj.tokens == ["<|endoftext|>", "The", "Ġcat", "Ġsat", "Ġon", "Ġthe", "Ġmat"]
    assert traj.input_labels()[2] == "␣cat"
    assert traj.targets.tolist() == traj.input_ids[1:].tolist() + [-100]
    assert traj.target_labels()[-1] == ""
    assert traj.lens_label == "logit lens"
    assert traj.layer_names() == ["0", "1", "2", "output"]
    assert torch.allclose(traj.log_probs.exp().sum(-1), torch.ones(4, 7), atol=1e-5)


def test_last_row_is_model_output_and_rows_match_layer_logits(setup, traj):
    model, _, lens = setup
    ids = traj.input_ids[None]
    logits = model(ids).logits[0]
    assert torch.allclose(traj.log_probs[-1], logits.log_softmax(-1), atol=1e-5)
    rows = layer_logits(model, lens, ids)[:, 0]
    assert torch.allclose(traj.log_probs, rows.log_softmax(-1), atol=1e-5)


def test_bos_is_optional(setup):
    without = trajectory(*setup, PROMPT, prepend_bos=False)
    assert without.tokens[0] == "The" and len(without) == 6


def test_batch_equals_one_by_one(setup):
    prompts = [PROMPT, "The dog ran", "a"]
    batch = trajectory(*setup, prompts)
    assert [len(t) for t in batch] == [7, 4, 2]
    for prompt, got in zip(prompts, batch, strict=True):
        alone = trajectory(*setup, prompt)
        assert torch.equal(got.input_ids, alone.input_ids)
        assert torch.allclose(got.log_probs, alone.log_probs, atol=1e-5)


def test_one_token_prompt(setup):
    one = trajectory(*setup, "The", prepend_bos=False)
    assert one.log_probs.shape == (4, 1, VOCAB)
    assert torch.isnan(statistic.cross_entropy(one)).all() and (statistic.rank(one) == 0).all()
    assert statistic.prediction_depth(one).shape == (1,)


@pytest.mark.parametrize("prompts", ["", [PROMPT, ""], []])
def test_empty_prompts_are_errors(setup, prompts):
    with pytest.raises(ValueError, match="empty|no prompts"):
        trajectory(*setup, prompts)


def test_too_long_prompt_is_an_error(setup):
    model, tokenizer, lens = setup
    assert context_length(model) == 64
    with pytest.raises(ValueError, match="64 tokens long|at most 64"):
        trajectory(model, tokenizer, lens, " the" * 64)  # BOS + 64 tokens
    assert len(trajectory(model, tokenizer, lens, " the" * 63)) == 64


def test_several_lenses_one_pass(setup):
    model, tokenizer, lens = setup
    tuned = perturbed_tuned_lens(model)
    result = trajectories_by_lens(model, tokenizer, {"logit": lens, "tuned": tuned},
                                  [PROMPT, "a"])
    assert [t.lens_label for t in result["tuned"]] == ["tuned", "tuned"]
    assert torch.allclose(result["logit"][0].log_probs, trajectory(*setup, PROMPT).log_probs,
                          atol=1e-5)
    assert torch.equal(result["logit"][0].log_probs[-1], result["tuned"][0].log_probs[-1])


def test_ids_without_tokenizer(setup):
    model, _, lens = setup
    (traj,) = trajectories_from_ids(model, {"": lens}, [[5, 6, 7]])[""]
    assert traj.tokens == ["#5", "#6", "#7"] and traj.label(9) == "#9"
    with pytest.raises(ValueError, match="no tokens"):
        trajectories_from_ids(model, {"": lens}, [[5], []])


@pytest.mark.parametrize("arch", ["llama", "gemma2", "gpt_neox"])
def test_other_architectures(arch):
    model = make_model(arch)
    traj = trajectory(model, make_tokenizer(), TunedLens.from_model(model), PROMPT)
    assert traj.log_probs.shape == (4, 7, VOCAB) and traj.lens_label == "tuned lens"


# Statistics against independent definitions ---------------------------------------------
def test_statistics_match_definitions(traj):
    p = traj.log_probs.exp().double().numpy()  # (layers + 1, seq, vocab)
    targets = traj.targets.numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(p * np.log(p), -1)
    kl = (p[-1] * (np.log(p[-1]) - np.log(p))).sum(-1)
    assert np.allclose(statistic.entropy(traj), entropy, atol=1e-4)
    assert np.allclose(statistic.kl_to_output(traj), kl, atol=1e-4)
    assert np.allclose(statistic.kl_to_output(traj)[-1], 0, atol=1e-6)  # KL(p, p) = 0
    assert np.allclose(statistic.max_probability(traj), p.max(-1), atol=1e-6)
    for layer in range(4):
        for pos in range(len(traj) - 1):
            q = p[layer, pos]
            target = targets[pos]
            assert statistic.cross_entropy(traj)[layer, pos] == pytest.approx(-math.log(q[target]),
                                                                     abs=1e-4)
            order = np.argsort(-q, kind="stable")
            assert statistic.rank(traj)[layer, pos] == int(np.nonzero(order == target)[0][0]) + 1
    assert math.isnan(statistic.cross_entropy(traj)[0, -1]) and statistic.rank(traj)[0, -1] == 0


def test_rank_is_one_for_the_argmax(traj):
    argmax = statistic.top_tokens(traj)[-1]
    argmax_traj = Trajectory(traj.log_probs, traj.input_ids, argmax, traj.tokens, traj.vocab, "x")
    assert (statistic.rank(argmax_traj)[-1] == 1).all()


def test_top_k(traj):
    probs, ids = statistic.top_k(traj, 5)
    assert probs.shape == ids.shape == (4, 7, 5)
    assert (probs[..., :-1] >= probs[..., 1:]).all()
    assert torch.equal(ids[..., 0], statistic.top_tokens(traj))
    assert torch.allclose(probs, traj.log_probs.exp().gather(-1, ids))


def test_statistic_registry(traj):
    assert STATISTICS["entropy"].label == "entropy (nats)"
    assert STATISTICS["rank"].log_scale
    rank = get_statistic("rank").values(traj)
    assert torch.isnan(rank[:, -1]).all()
    assert torch.equal(rank[:, :-1], statistic.rank(traj)[:, :-1].float())
    with pytest.raises(ValueError, match="unknown statistic"):
        get_statistic("perplexity")


def test_js_and_tv_between_lenses(setup):
    model, tokenizer, lens = setup
    logit = trajectory(model, tokenizer, lens, PROMPT)
    tuned = trajectory(model, tokenizer, perturbed_tuned_lens(model), PROMPT)
    js = js_divergence(logit.log_probs, tuned.log_probs)
    assert torch.allclose(js, js_divergence(tuned.log_probs, logit.log_probs), atol=1e-6)
    assert (js >= -1e-6).all() and (js <= math.log(2) + 1e-6).all()
    assert js[:-1].max() > 1e-3 and torch.allclose(js[-1], torch.zeros(7), atol=1e-6)
    p, q = logit.log_probs.exp(), tuned.log_probs.exp()
    tv = total_variation(logit.log_probs, tuned.log_probs)
    assert torch.allclose(tv, 0.5 * (p - q).abs().sum(-1), atol=1e-6)
    m = 0.5 * (p + q)
    js_direct = 0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)
    assert torch.allclose(js, js_direct, atol=1e-5)
    zero = trajectory(model, tokenizer, TunedLens.from_model(model), PROMPT)
    assert torch.allclose(js_divergence(logit.log_probs, zero.log_probs), torch.zeros(4, 7),
                          atol=1e-6)


def _hand_made(top1_rows):
    """A trajectory whose top-1 token at (layer, position) is ``top1_rows[layer][pos]``."""
    top1 = torch.tensor(top1_rows)
    logits = torch.zeros(*top1.shape, 5).scatter(-1, top1[..., None], 3.0)
    ids = torch.arange(top1.shape[1])
    return Trajectory(logits.log_softmax(-1), ids, ids, ["a"] * len(ids), list("abcde"), "test")


def test_prediction_depth_by_hand():
    traj = _hand_made([[0, 1, 2, 3],
                       [1, 1, 0, 3],
                       [2, 1, 2, 0],
                       [2, 1, 2, 3]])  # output row
    assert statistic.prediction_depth(traj).tolist() == [2, 0, 2, 3]


def test_prediction_depth_matches_definition(traj):
    top1 = statistic.top_tokens(traj)
    for pos, depth in enumerate(statistic.prediction_depth(traj).tolist()):
        stays = [all(top1[m, pos] == top1[-1, pos] for m in range(layer, 4)) for layer in range(4)]
        assert depth == stays.index(True)


# Token labels -----------------------------------------------------------------------------
@pytest.mark.parametrize(("token", "label"), [
    ("Ġthe", "␣the"), ("Ċ", "\\n"), ("ĊĠĠ", "\\n␣␣"), ("ĉ", "\\t"), ("Ã©", "é"),
    ("Ġ$x$", "␣$x$"), ("▁Paris", "␣Paris"), ("<0x0A>", "\\n"), ("é", "é"), ("", "∅"),
    ("ć", "\\x07"), ("plain", "plain"),
])
def test_readable_token(token, label):
    assert readable_token(token) == label


def test_partial_utf8_and_cutting():
    assert token_text("Ã", byte_level=True) == "\\xc3"
    assert token_text("Ã") == "Ã"  # could be SentencePiece text: left alone
    assert readable_token("Ġinternationalisation", max_chars=6) == "␣inte…"


def test_vocabulary_pads_model_rows():
    names = vocabulary(make_tokenizer(), VOCAB + 3)
    assert len(names) == VOCAB + 3 and names[0] == "<|endoftext|>" and names[-1] == "<id 99>"


def test_text_depths_match_full_trajectories(setup):
    """The top-1-only path of prediction depth gives what full trajectories give."""
    from lensbook.analysis.depth import TextDepth, depth_table, text_depths
    from lensbook.plotting import plot_prediction_depth

    model, tokenizer, lens = setup
    lenses = {"logit": lens, "tuned": perturbed_tuned_lens(model)}
    texts = [PROMPT, "The dog ran on the mat"]
    full = trajectories_by_lens(model, tokenizer, lenses, texts)
    reduced = text_depths(model, tokenizer, lenses, texts)
    for name in lenses:
        for traj, depths in zip(full[name], reduced[name], strict=True):
            expected = TextDepth.of(traj)
            assert torch.equal(depths.depth, expected.depth)
            assert torch.equal(depths.output_ids, expected.output_ids)
            assert depths.labels == traj.input_labels() and depths.num_layers == traj.num_layers
    assert depth_table(reduced, {3}).equals(depth_table(full, {3}))
    assert {t.lens_label for t in reduced["tuned"]} == {"tuned"}
    plot_prediction_depth(reduced["tuned"][0])
