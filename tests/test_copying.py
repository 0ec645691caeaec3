"""Repeated sequences and copy statistics (induction)."""

import pandas as pd
import pytest
import torch

from lensbook import LogitLens, Trajectory, TunedLens
from lensbook.analysis.copying import (
    copy_layer,
    copy_layers,
    copy_statistics,
    copy_table,
    repetition_gain,
    summarize,
)
from lensbook.analysis.repeats import Repeats, random_repeats, repeat_block, text_repeats
from lensbook.plotting import plot_copy_curves
from tests.tiny_models import VOCAB
from tests.tiny_tokenizer import make_tokenizer


def _traj(log_probs, ids):
    ids = torch.tensor(ids)
    targets = torch.cat([ids[1:], torch.tensor([-100])])
    vocab = [f"t{i}" for i in range(log_probs.shape[-1])]
    return Trajectory(log_probs, ids, targets, [vocab[i] for i in ids], vocab, "lens")


# Building sequences ---------------------------------------------------------------------
def test_random_repeats_are_reproducible_and_repeat_their_block():
    seqs = random_repeats(range(10, 60), length=8, repeats=3, count=4, seed=7, prefix=[0])
    again = random_repeats(range(10, 60), length=8, repeats=3, count=4, seed=7, prefix=[0])
    other = random_repeats(range(10, 60), length=8, repeats=3, count=4, seed=8, prefix=[0])
    assert [s.input_ids for s in seqs] == [s.input_ids for s in again]
    assert [s.input_ids for s in seqs] != [s.input_ids for s in other]
    for s in seqs:
        assert len(s.input_ids) == 1 + 3 * 8 and s.input_ids[0] == 0
        assert (s.period, s.repeats, s.offset) == (8, 3, 1)
        assert s.input_ids[1:9] == s.input_ids[9:17] == s.input_ids[17:25] == s.block
        assert len(set(s.block)) == 8 and set(s.block) <= set(range(10, 60))
    assert len({tuple(s.block) for s in seqs}) == 4  # each sequence draws a new block


def test_positions_predict_the_copied_token():
    seq = repeat_block([5, 6, 7, 8], repeats=3, prefix=[0])
    assert seq.positions(0).tolist() == [1, 2, 3]
    assert seq.positions(2).tolist() == [9, 10, 11]
    ids = torch.tensor(seq.input_ids)
    for k in range(3):
        assert ids[seq.positions(k) + 1].tolist() == seq.copied_tokens.tolist() == [6, 7, 8]
    with pytest.raises(ValueError, match="occurrence must be in 0..2"):
        seq.positions(3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(block=[3]), "at least 2 tokens"),
    (dict(block=[], repeats=2), "at least 2 tokens"),
    (dict(block=[3, 4], repeats=1), "at least twice"),
    (dict(block=[3, 4, 5], repeats=3, prefix=[0], context=9), "at most 9"),
])
def test_bad_repeats_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        repeat_block(**kwargs)


def test_context_fits_exactly_and_small_pools_are_errors():
    assert len(repeat_block([3, 4, 5], 3, [0], context=10).input_ids) == 10
    with pytest.raises(ValueError, match="fewer than length=5"):
        random_repeats([1, 2, 2, 3], length=5)
    with pytest.raises(ValueError, match="at most 64"):
        random_repeats(range(VOCAB), length=40, repeats=2, prefix=[0], context=64)


def test_text_repeats_tokenise_once_after_bos():
    tok = make_tokenizer()
    (seq,) = text_repeats(tok, ["The cat sat on the mat"], length=4)
    cat_sat = tok("The cat sat on", add_special_tokens=False).input_ids
    assert seq.input_ids == [tok.bos_token_id] + cat_sat * 2
    with pytest.raises(ValueError, match="text 1 has 2 tokens"):
        text_repeats(tok, ["The cat sat on the mat", "The cat"], length=4)


# Statistics -------------------------------------------------------------------------------
@pytest.fixture
def known():
    """Layer 0 is uniform; the output copies at the second occurrence, says 5 at the first."""
    seq = repeat_block([2, 3, 4], repeats=2, prefix=[0])  # ids 0 2 3 4 2 3 4
    logits = torch.zeros(2, 7, 6)
    logits[1, :, 5] = 10.0
    for p, token in zip(seq.positions(1).tolist(), [3, 4], strict=True):
        logits[1, p, token] = 20.0
    return seq, _traj(logits.log_softmax(-1), seq.input_ids)


def test_copy_statistics_on_a_known_trajectory(known):
    seq, traj = known
    frame = copy_statistics(traj, seq)
    assert list(frame.columns) == ["occurrence", "position", "layer", "probability",
                                   "cross_entropy", "rank", "top1"]
    assert len(frame) == 2 * 2 * 2  # occurrences × positions × layers
    uniform = frame[frame.layer == 0]
    assert uniform.probability.to_numpy() == pytest.approx(1 / 6)
    assert uniform.cross_entropy.to_numpy() == pytest.approx(torch.log(torch.tensor(6.)).item())
    out = frame[frame.layer == 1].set_index(["occurrence", "position"])
    assert out.loc["second", "top1"].tolist() == [1.0, 1.0]
    assert out.loc["second", "rank"].tolist() == [1.0, 1.0]
    assert out.loc["first", "top1"].tolist() == [0.0, 0.0]
    assert out.loc["first", "rank"].tolist() == [2.0, 2.0]  # behind token 5
    assert out.loc["second", "probability"].min() > 0.99


def test_summary_copy_layer_and_gain(known):
    seq, traj = known
    table = copy_statistics(traj, seq).assign(lens="tuned lens")
    summary = summarize(table)
    assert summary.columns.tolist() == ["lens", "occurrence", "layer", "probability",
                                        "cross_entropy", "rank", "top1"]
    assert summary.top1.tolist() == [0.0, 0.0, 0.0, 1.0]  # (first: 0, 1), (second: 0, 1)
    assert copy_layers(summary).to_dict() == {"tuned lens": 1}
    gain = repetition_gain(summary)
    assert gain.gain[gain.layer == 0].item() == pytest.approx(0, abs=1e-6)
    assert gain.gain[gain.layer == 1].item() > 9  # about 10 nats: from token 5 to the copy


def test_mismatched_trajectory_is_an_error(known):
    seq, traj = known
    with pytest.raises(ValueError, match="not the repeated sequence"):
        copy_statistics(traj, Repeats([0, 2, 3, 4, 2, 3, 5], 3, 2, 1))


def test_copy_layer_finds_the_first_layer_over_the_threshold():
    assert copy_layer([0.0, 0.2, 0.6, 0.4, 0.9]) == 2
    assert copy_layer([0.0, 0.2, 0.6, 0.4, 0.9], threshold=0.95) is None
    assert copy_layer([0.5]) == 0
    rows = [("a", lens, occ, layer, top1)
            for lens, rates in {"logit": [0.0, 0.1, 0.7], "tuned": [0.0, 0.1, 0.2]}.items()
            for occ in ("first", "second") for layer, top1 in enumerate(rates)]
    summary = pd.DataFrame(rows, columns=["case", "lens", "occurrence", "layer", "top1"])
    layers = copy_layers(summary)
    assert layers.loc[("a", "logit")] == 2 and pd.isna(layers.loc[("a", "tuned")])
    with pytest.raises(ValueError, match="no rows for occurrence 'third'"):
        copy_layers(summary, occurrence="third")


def test_copy_table_on_a_tiny_model(model):
    lenses = {"logit lens": LogitLens.from_model(model), "tuned lens": TunedLens.from_model(model)}
    seqs = random_repeats(range(1, VOCAB), length=5, count=3, seed=0, prefix=[0])
    table = copy_table(model, lenses, seqs, make_tokenizer(), batch_size=2)
    L = model.config.num_hidden_layers
    assert len(table) == 2 * 3 * 2 * 4 * (L + 1)  # lenses × seqs × occurrences × positions × rows
    assert sorted(table.sequence.unique()) == [0, 1, 2]
    summary = summarize(table)
    out = summary[summary.layer == L].set_index(["occurrence", "lens"]).probability
    assert out.loc[("second", "logit lens")] == pytest.approx(out.loc[("second", "tuned lens")])
    assert table["rank"].between(1, VOCAB).all() and table.top1.isin([0.0, 1.0]).all()


def test_plot_copy_curves_draws_a_panel_per_case(known):
    seq, traj = known
    table = pd.concat({c: copy_statistics(traj, seq).assign(lens="tuned lens")
                       for c in ("random", "text")}, names=["case"]).reset_index(0)
    summary = summarize(table, by=("case", "lens", "occurrence"))
    fig = plot_copy_curves(summary, "top1", threshold=0.5)
    assert [ax.get_title() for ax in fig.axes] == ["random", "text"]
    assert len(fig.axes[0].lines) >= 3  # first, second, threshold
    assert plot_copy_curves(summary.drop(columns="case")).axes[0].get_title() == ""
    gain = plot_copy_curves(repetition_gain(summary), "gain", threshold=0.0)
    assert gain.axes[0].get_ylabel() == "repetition gain (nats)"
    with pytest.raises(ValueError, match="unknown metric 'bogus'"):
        plot_copy_curves(summary, "bogus")
