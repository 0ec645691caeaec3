"""What the figures draw: cell texts, colour values, stars, rows, labels; PNGs on disk."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import colormaps
from matplotlib.colors import LogNorm, Normalize, PowerNorm, to_rgba

from lensbook import LogitLens, Trajectory, TunedLens, trajectory
from lensbook.analysis import statistic
from lensbook.analysis.statistic import STATISTICS
from lensbook.plotting import (
    heatmap_data,
    plot_layer_metrics,
    plot_lens_comparison,
    plot_prediction_depth,
    plot_top_k,
    plot_trajectory,
    plot_transfer_matrix,
    save_figure,
    strided_layers,
)
from lensbook.plotting.layout import MAX_WIDTH
from tests.tiny_tokenizer import make_tokenizer

PROMPT = "The cat sat on the mat\n é $x"


@pytest.fixture(scope="module")
def traj(model):
    return trajectory(model, make_tokenizer(), LogitLens.from_model(model), PROMPT)


def with_targets(traj: Trajectory, targets: torch.Tensor) -> Trajectory:
    return Trajectory(traj.log_probs, traj.input_ids, targets, traj.tokens, traj.vocab,
                      traj.lens_label, traj.byte_level)


def cells(ax, gid="top1"):
    """{(row, col): text} of the texts with ``gid`` drawn on a heatmap axes."""
    found = {}
    for text in ax.texts:
        if text.get_gid() == gid:
            x, y = text.get_position()
            found[(int(y), int(x))] = text.get_text()
    return found


def stars(ax):
    (collection,) = [c for c in ax.collections if c.get_gid() == "stars"]
    return {(int(y), int(x)) for x, y in collection.get_offsets()}


def mesh_values(ax):
    (mesh,) = [c for c in ax.collections if c.get_gid() == "statistic"]
    n_cols = len([t for t in ax.texts if t.get_gid() == "input"])
    return mesh, np.ma.filled(mesh.get_array().astype(float), np.nan).reshape(-1, n_cols)


# The heatmap ------------------------------------------------------------------------------
def test_strided_layers_keep_the_output():
    assert strided_layers(7, 1) == list(range(7))
    assert strided_layers(7, 3) == [0, 3, 6]
    assert strided_layers(8, 3) == [0, 3, 6, 7]
    assert strided_layers(4, 10) == [0, 3]
    with pytest.raises(ValueError):
        strided_layers(4, 0)


def test_cell_texts_are_the_top1_tokens(traj):
    ax = plot_trajectory(traj).axes[0]
    top1 = statistic.top_tokens(traj)
    expected = {(layer, pos): traj.label(int(top1[layer, pos]), 7)
                for layer in range(4) for pos in range(len(traj))}
    assert cells(ax) == expected
    assert all(t.get_parse_math() is False for t in ax.texts)  # "$x$" stays text


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_colours_are_the_statistic(traj, name):
    fig = plot_trajectory(traj, name)
    mesh, values = mesh_values(fig.axes[0])
    expected = STATISTICS[name].values(traj).numpy()
    np.testing.assert_allclose(values, expected, rtol=1e-6, equal_nan=True)
    assert isinstance(mesh.norm, LogNorm) == (name == "rank")
    assert fig.axes[-1].get_ylabel() == STATISTICS[name].label


def test_colour_bar_has_units(traj):
    assert plot_trajectory(traj, "entropy").axes[-1].get_ylabel() == "entropy (nats)"
    assert plot_trajectory(traj, "kl").axes[-1].get_ylabel().endswith("(nats)")


def test_stars_where_top1_is_the_next_token(traj):
    ax = plot_trajectory(traj).axes[0]
    top1 = statistic.top_tokens(traj)
    assert stars(ax) == {(r, c) for r in range(4) for c in range(len(traj))
                         if top1[r, c] == traj.targets[c]}
    # Make the output row right everywhere but the last position: stars follow.
    rigged = with_targets(traj, torch.cat([top1[-1, :-1], torch.tensor([-100])]))
    expected = {(r, c) for r in range(4) for c in range(len(traj) - 1) if top1[r, c] == top1[-1, c]}
    assert stars(plot_trajectory(rigged).axes[0]) == expected
    assert {(3, c) for c in range(len(traj) - 1)} <= expected


def test_stride_and_token_range(traj):
    fig = plot_trajectory(traj, "rank", layer_stride=2, positions=(2, 5))
    ax = fig.axes[0]
    assert list(cells(ax, "layer").values()) == ["0", "2", "output"]
    assert list(cells(ax, "input").values()) == traj.input_labels(10)[2:5]
    data = heatmap_data(traj, "rank", 2, (2, 5))
    assert data.rows == [0, 2, 3] and data.positions == [2, 3, 4]
    top1 = statistic.top_tokens(traj)
    assert cells(ax) == {(i, j): traj.label(int(top1[r, p]), 7)
                         for i, r in enumerate([0, 2, 3]) for j, p in enumerate([2, 3, 4])}
    _, values = mesh_values(ax)
    np.testing.assert_allclose(values, STATISTICS["rank"].values(traj).numpy()[[0, 2, 3]][:, 2:5])
    assert list(cells(ax, "target").values()) == traj.target_labels(10)[2:5]
    with pytest.raises(ValueError, match="no positions"):
        plot_trajectory(traj, positions=(5, 5))


def test_lens_comparison_shares_one_scale(model, traj):
    tuned = trajectory(model, make_tokenizer(), TunedLens.from_model(model), PROMPT)
    with torch.no_grad():
        tuned.log_probs[0] = tuned.log_probs[0].roll(1, -1)  # make the panels differ
    fig = plot_lens_comparison([traj, tuned], "kl")
    left, right = fig.axes[0], fig.axes[1]
    assert [left.get_title(), right.get_title()] == ["logit lens", "tuned lens"]
    (m1, v1), (m2, v2) = mesh_values(left), mesh_values(right)
    assert m1.norm is m2.norm
    # Fixed: 0 to ln V nats (a uniform guess), whatever the data, on a square-root scale.
    vocab = traj.log_probs.shape[-1]
    assert (m1.norm.vmin, m1.norm.vmax) == pytest.approx((0.0, np.log(vocab)))
    assert isinstance(m1.norm, PowerNorm) and m1.norm.gamma == 0.5
    np.testing.assert_allclose(v2, statistic.kl_to_output(tuned).numpy(), rtol=1e-6)
    assert len(fig.axes) == 3 and fig.axes[2].get_ylabel() == "KL(output ‖ lens) (nats)"
    # Fitted to the data: the 2nd to 98th percentile of both panels' values together.
    fitted = mesh_values(plot_lens_comparison([traj, tuned], "kl", fit="data").axes[1])[0]
    both = np.concatenate([v1.ravel(), v2.ravel()])
    assert (fitted.norm.vmin, fitted.norm.vmax) == pytest.approx(
        tuple(np.percentile(both[np.isfinite(both)], [2, 98])))


def test_fixed_colour_scales_per_statistic(traj):
    vocab = traj.log_probs.shape[-1]
    expected = {"entropy": (0.0, np.log(vocab)), "cross_entropy": (0.0, np.log(vocab)),
                "max_probability": (0.0, 1.0), "rank": (1.0, float(vocab))}
    for name, (low, high) in expected.items():
        mesh, _ = mesh_values(plot_trajectory(traj, name).axes[0])
        assert (mesh.norm.vmin, mesh.norm.vmax) == pytest.approx((low, high)), name
    assert isinstance(mesh_values(plot_trajectory(traj, "rank").axes[0])[0].norm, LogNorm)


def test_long_prompts_wrap_and_lenses_stack(model):
    long = trajectory(model, make_tokenizer(), LogitLens.from_model(model), "The cat sat " * 8)
    fig = plot_lens_comparison([long, long], "entropy", titles=["a", "b"])
    panels = fig.axes[:-1]
    assert fig.get_figwidth() <= MAX_WIDTH
    shown = [p for ax in panels[::2] for p in cells(ax, "input")]
    assert len(shown) == len(long)  # every position once per lens, in chunks
    assert [ax.get_title().split(",")[0] for ax in panels[:2]] == ["a", "b"]  # chunk by chunk


def test_legend_line_explains_the_marks(traj):
    fig = plot_trajectory(traj, "cross_entropy")
    legend = " ".join(t.get_text() for t in fig.findobj(lambda a: a.get_gid() == "legend"))
    assert "␣ a space" in legend and "grey: no value" in legend
    assert ("★" in legend) == bool(heatmap_data(traj, "cross_entropy").stars.any())


# Other figures ----------------------------------------------------------------------------
def test_top_k_bars(traj):
    fig = plot_top_k(traj, layer=1, position=2, k=6)
    ax = fig.axes[0]
    probs, ids = statistic.top_k(traj, 6)
    np.testing.assert_allclose([b.get_width() for b in ax.patches], probs[1, 2].numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == [traj.label(int(i), 16)
                                                              for i in ids[1, 2]]
    assert ax.get_xlabel() == "probability"


def test_top_k_marks_the_target(traj):
    # make the second-best token at (0, 1) the target
    top = int(statistic.top_k(traj, 3)[1][0, 1, 1])
    targets = traj.targets.clone()
    targets[1] = top
    ax = plot_top_k(with_targets(traj, targets), 0, 1, k=3).axes[0]
    colors = [b.get_facecolor() for b in ax.patches]
    assert colors[1] == to_rgba("tab:orange") and colors[0] == to_rgba("tab:blue")


def test_prediction_depth_text(traj):
    norm, cmap = Normalize(0, traj.num_layers), colormaps["viridis"]
    depths = statistic.prediction_depth(traj).tolist()

    def boxes(fig):
        texts = [t for t in fig.axes[0].texts if t.get_gid() == "depth"]
        assert [t.get_text() for t in texts] == traj.input_labels()
        return [t.get_bbox_patch().get_facecolor() for t in texts]

    # The paper's view: token i has the colour of the prediction made at i - 1 (of token i).
    fig = plot_prediction_depth(traj)
    assert boxes(fig)[0] == pytest.approx(to_rgba("0.85"))  # nothing predicts the first token
    for box, depth in zip(boxes(fig)[1:], depths[:-1], strict=True):
        assert box == pytest.approx(cmap(norm(depth)))
    assert "its own prediction" in fig.axes[0].get_title()
    # The other view: token i has the colour of the prediction made at it (of token i + 1).
    fig = plot_prediction_depth(traj, view="predicting")
    for box, depth in zip(boxes(fig), depths, strict=True):
        assert box == pytest.approx(cmap(norm(depth)))
    assert "made at it" in fig.axes[0].get_title()
    assert fig.axes[-1].get_xlabel() == "prediction depth (layer)"


def metrics_table():
    rows = [dict(lens=lens, layer=layer, metric=metric, value=offset + 1 / (layer + 1), unit=unit)
            for lens, offset in [("logit lens", 1.0), ("tuned lens", 0.0)]
            for metric, unit in [("kl", "bits/byte"), ("ce", "bits/byte")]
            for layer in range(4)]
    return pd.DataFrame(rows)


def test_layer_metric_curves():
    fig = plot_layer_metrics(metrics_table())
    assert [ax.get_title() for ax in fig.axes] == [
        "KL(output ‖ lens) (bits/byte)", "cross-entropy to next token (bits/byte)"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["bits/byte", "bits/byte"]
    assert all(ax.get_xlabel() == "layer (last = output)" for ax in fig.axes)
    lines = [line for line in fig.axes[0].lines if len(line.get_xdata()) == 4]
    assert sorted(tuple(np.round(line.get_ydata(), 6)) for line in lines) == sorted(
        tuple(np.round(off + 1 / np.arange(1, 5), 6)) for off in (0.0, 1.0))
    with pytest.raises(ValueError, match="lacks columns"):
        plot_layer_metrics(metrics_table().drop(columns="unit"))


def test_curves_from_a_real_evaluation(model):
    from lensbook.analysis.evaluate import evaluate_lenses

    chunks = torch.randint(1, 97, (4, 16), generator=torch.Generator().manual_seed(0))
    lenses = {"logit": LogitLens.from_model(model), "tuned": TunedLens.from_model(model)}
    frame = evaluate_lenses(model, lenses, chunks, bits_per_byte_factor=0.5)
    fig = plot_layer_metrics(frame, ["kl", "ce"])
    assert [ax.get_ylabel() for ax in fig.axes] == ["bits/byte", "bits/byte"]
    fig = plot_layer_metrics(frame, ["kl"], units=["nats/token"])
    kl = frame.query("metric == 'kl' and unit == 'nats/token' and lens == 'logit'")
    logit_line = [line for line in fig.axes[0].lines if len(line.get_xdata()) == len(kl)][0]
    np.testing.assert_allclose(logit_line.get_ydata(), kl.sort_values("layer")["value"])


def test_transfer_matrix_from_a_tidy_table(model):
    from lensbook.analysis.transfer import transfer_matrix

    chunks = torch.randint(1, 97, (2, 16), generator=torch.Generator().manual_seed(0))
    frame = transfer_matrix(model, TunedLens.from_model(model), chunks)
    fig = plot_transfer_matrix(frame)
    penalty = frame.query("metric == 'penalty' and unit == 'nats/token'")
    grid = penalty.pivot(index="translator", columns="layer", values="value").to_numpy()
    values = np.asarray(fig.axes[0].collections[0].get_array()).reshape(grid.shape)
    np.testing.assert_allclose(values, grid, atol=1e-6)
    assert fig.axes[-1].get_ylabel() == "cross-entropy penalty (nats/token)"


def test_transfer_matrix():
    matrix = np.arange(16, dtype=float).reshape(4, 4) / 10
    fig = plot_transfer_matrix(matrix, unit="bits/byte")
    mesh = fig.axes[0].collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(4, 4), matrix)
    assert fig.axes[-1].get_ylabel() == "cross-entropy penalty (bits/byte)"


# Rendering ---------------------------------------------------------------------------------
def test_rendering_writes_pngs(tmp_path, traj):
    figures = {
        "trajectory-entropy": plot_trajectory(traj),
        "trajectory-rank": plot_trajectory(traj, "rank", layer_stride=2),
        "comparison": plot_lens_comparison([traj, traj], "max_probability"),
        "top-k": plot_top_k(traj, -1, -1),
        "depth": plot_prediction_depth(traj),
        "curves": plot_layer_metrics(metrics_table()),
        "transfer": plot_transfer_matrix(np.eye(4)),
    }
    for name, fig in figures.items():
        path = save_figure(fig, name, folder=tmp_path / "figures")
        assert path == tmp_path / "figures" / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_no_pyplot_and_no_global_style():
    code = (
        "import matplotlib, matplotlib.pyplot as plt\n"
        "before = {k: str(v) for k, v in matplotlib.rcParams.items()}\n"
        "import lensbook.plotting, lensbook.widgets\n"
        "after = {k: str(v) for k, v in matplotlib.rcParams.items()}\n"
        "assert before == after, [k for k in before if before[k] != after[k]]\n"
        "from tests.test_plotting import metrics_table\n"
        "lensbook.plotting.plot_layer_metrics(metrics_table())\n"
        "assert plt.get_fignums() == []\n"
    )
    env = {**os.environ, "MPLBACKEND": "Agg"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_training_history_plot_has_one_line_per_layer_and_units():
    import pandas as pd

    from lensbook.plotting import plot_training_history

    history = pd.DataFrame(
        [{"step": s, "layer": layer, "kl": 10.0 / (s * (layer + 1))}
         for s in range(1, 6) for layer in range(3)]
    )
    fig = plot_training_history(history)
    ax = fig.axes[0]
    assert len(ax.get_lines()) >= 3
    assert "nats/token" in ax.get_ylabel() and ax.get_yscale() == "log"
    history["kl_bits_per_byte"] = history["kl"] * 0.4
    assert "bits/byte" in plot_training_history(history).axes[0].get_ylabel()
