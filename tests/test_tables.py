"""Per-layer tables from trajectories."""

import pytest
import torch

from lensbook import Trajectory
from lensbook.analysis import statistic
from lensbook.analysis.statistic import copy_rate
from lensbook.analysis.tables import layer_table


def _traj(log_probs, ids):
    targets = torch.cat([ids[1:], torch.tensor([-100])])
    vocab = [f"t{i}" for i in range(log_probs.shape[-1])]
    return Trajectory(log_probs, ids, targets, [vocab[i] for i in ids], vocab, "logit lens")


def test_copy_rate_marks_where_top1_is_the_input_token():
    ids = torch.tensor([2, 0, 1])
    logp = torch.full((2, 3, 4), -10.0)
    logp[0, torch.arange(3), ids] = 0.0  # layer 0 copies every input token
    logp[1, :, 3] = 0.0  # the output always says token 3
    rates = copy_rate(_traj(logp.log_softmax(-1), ids))
    assert rates.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]


def test_layer_table_is_tidy_and_averages_over_positions_and_prompts():
    torch.manual_seed(0)
    trajs = [_traj(torch.randn(3, 5, 7).log_softmax(-1), torch.randint(0, 7, (5,)))
             for _ in range(2)]
    table = layer_table({"logit lens": trajs}, ["entropy", "kl", "copy_rate"])
    assert list(table.columns) == ["lens", "layer", "metric", "value", "unit"]
    assert len(table) == 3 * 3
    entropy = table[table.metric == "entropy"].value.tolist()
    expected = torch.stack([statistic.entropy(t).mean(1) for t in trajs]).mean(0).tolist()
    assert entropy == pytest.approx(expected)
    assert table[(table.metric == "kl") & (table.layer == 2)].value.item() == pytest.approx(0)
    assert set(table[table.metric == "copy_rate"].unit) == {"fraction"}


def test_unknown_metric_is_a_clear_error():
    traj = _traj(torch.zeros(2, 2, 3).log_softmax(-1), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="unknown statistic 'bogus'"):
        layer_table({"x": [traj]}, ["bogus"])


def test_depth_table_groups_positions_by_predicted_token():
    from lensbook.analysis.depth import depth_table, most_frequent

    ids = torch.tensor([0, 1, 2])
    logp = torch.full((3, 3, 4), -10.0)
    logp[:, :, 3] = 0.0  # every layer predicts token 3 ...
    logp[0, 1, 3], logp[0, 1, 2] = -10.0, 0.0  # ... except layer 0 at position 1
    traj = _traj(logp.log_softmax(-1), ids)
    table = depth_table({"lens": [traj]}, frequent={3})
    assert table.depth.tolist() == [0, 1, 0]
    assert set(table.group) == {"frequent"}
    assert most_frequent(torch.tensor([[5, 5, 1], [5, 1, 2]]), 2) == {5, 1}


def test_frequency_ranking_is_in_frequency_order_not_id_order():
    from lensbook.analysis.depth import frequency_ranking

    ids = torch.tensor([[7, 7, 7, 2], [2, 9, 9, 3], [3, 3, 3, 3]])  # 3 x5, 7 x3, 2 x2, 9 x2
    assert frequency_ranking(ids, 4) == [3, 7, 2, 9]  # the tie 2/9: lower id first


def test_depth_plot_has_bars_per_lens():
    import pandas as pd

    from lensbook.plotting import plot_depth_by_group

    table = pd.DataFrame({"lens": ["a", "a", "b", "b"], "group": ["frequent", "rare"] * 2,
                          "depth": [1, 3, 0, 2]})
    ax = plot_depth_by_group(table).axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches if p.get_height() > 0)
    assert heights == [1, 2, 3]
    assert "layer" in ax.get_ylabel()
