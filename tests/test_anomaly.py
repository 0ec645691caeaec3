"""Trajectory features, anomaly detectors, AUROC with bootstrap intervals, and their figure."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from lensbook import LogitLens, TunedLens, trajectories_by_lens
from lensbook.analysis.detectors import (
    BASELINE,
    DETECTORS,
    _mann_whitney_auroc,
    anomaly_scores,
    auroc,
    detection_table,
    format_table,
    make_detector,
)
from lensbook.analysis.features import lens_features, output_features, prompt_features
from lensbook.analysis.statistic import STATISTICS
from lensbook.plotting import plot_detection
from tests.tiny_tokenizer import make_tokenizer

PROMPTS = ["The cat sat on the mat", "The dog ran", "a cat sat on the mat\n the dog ran on",
           "The mat"]


@pytest.fixture(scope="module")
def lenses(model):
    torch.manual_seed(0)
    tuned = TunedLens.from_model(model)
    with torch.no_grad():  # a non-trivial tuned lens, so that it differs from the logit lens
        for p in tuned.trainable_parameters():
            p.normal_(0, 0.1)
    return {"logit lens": LogitLens.from_model(model), "tuned lens": tuned}


# Features ---------------------------------------------------------------------------
def test_last_positions_are_the_last_columns_of_full_trajectories(model, lenses):
    tokenizer = make_tokenizer()
    full = trajectories_by_lens(model, tokenizer, lenses, PROMPTS)
    tail = trajectories_by_lens(model, tokenizer, lenses, PROMPTS, last_positions=2)
    for name in lenses:
        for f, t in zip(full[name], tail[name], strict=True):
            assert t.log_probs.shape == (model.config.n_layer + 1, 2, f.log_probs.shape[-1])
            torch.testing.assert_close(t.log_probs, f.log_probs[:, -2:], atol=1e-5, rtol=1e-5)
            assert torch.equal(t.input_ids, f.input_ids[-2:])
            assert torch.equal(t.targets, f.targets[-2:])
            assert t.tokens == f.tokens[-2:] and t.lens_label == name


def test_lens_features_are_statistics_by_position_layer_and_statistic(model, lenses):
    by_lens = trajectories_by_lens(model, make_tokenizer(), lenses, PROMPTS, last_positions=3)
    trajs = by_lens["tuned lens"]
    feats = lens_features(trajs, positions=3, statistics=("entropy", "kl"))
    layers = model.config.n_layer + 1
    assert feats.shape == (len(PROMPTS), 3 * layers * 2)
    grid = feats.reshape(len(PROMPTS), layers, 3, 2)  # (prompt, layer, position, statistic)
    np.testing.assert_allclose(grid[1, :, :, 0], STATISTICS["entropy"].values(trajs[1]), rtol=1e-6)
    np.testing.assert_allclose(grid[1, :, :, 1], STATISTICS["kl"].values(trajs[1]), atol=1e-6)
    assert np.allclose(grid[:, -1, :, 1], 0, atol=1e-5)  # the output row has no KL to itself


def test_output_features_see_only_the_output_row(model, lenses):
    trajs = trajectories_by_lens(model, make_tokenizer(), lenses, PROMPTS, last_positions=2)
    logit, tuned = (output_features(trajs[n], positions=2, k=5) for n in lenses)
    assert logit.shape == (len(PROMPTS), 2 * 6)
    np.testing.assert_allclose(logit, tuned, atol=1e-5)  # the lens does not matter
    assert np.all(np.diff(logit.reshape(len(PROMPTS), 2, 6)[..., :5], axis=-1) <= 0)


def test_prompt_features_do_not_depend_on_the_batch_size(model, lenses):
    tokenizer = make_tokenizer()
    one = prompt_features(model, tokenizer, lenses, PROMPTS, positions=2, batch_size=1)
    all_ = prompt_features(model, tokenizer, lenses, PROMPTS, positions=2, batch_size=16)
    assert set(one) == {"logit lens", "tuned lens", BASELINE}
    for name in one:
        np.testing.assert_allclose(one[name], all_[name], atol=1e-4)
    assert not np.allclose(one["logit lens"], one["tuned lens"])


def test_too_many_positions_are_refused(model, lenses):
    with pytest.raises(ValueError, match="positions"):
        trajectories_by_lens(model, make_tokenizer(), lenses, ["The mat"], last_positions=4)
    trajs = trajectories_by_lens(model, make_tokenizer(), lenses, ["The mat"], last_positions=2)
    with pytest.raises(ValueError, match="positions"):
        lens_features(trajs["logit lens"], positions=3)
    with pytest.raises(ValueError, match="positions"):
        output_features(trajs["logit lens"], positions=0)
    with pytest.raises(ValueError, match="no trajectories"):
        lens_features([], positions=1)


# Detectors --------------------------------------------------------------------------
@pytest.mark.parametrize("detector", DETECTORS)
def test_detectors_score_far_points_as_more_anomalous(detector):
    rng = np.random.default_rng(0)
    train, inliers = rng.normal(size=(60, 5)), rng.normal(size=(20, 5))
    outliers = rng.normal(size=(20, 5)) + 6
    scores = anomaly_scores(detector, train, np.concatenate([inliers, outliers]), seed=0)
    assert scores[20:].min() > scores[:20].max()


def test_isolation_forest_is_seeded():
    rng = np.random.default_rng(1)
    train, test = rng.normal(size=(40, 4)), rng.normal(size=(10, 4))
    a, b = (anomaly_scores("isolation forest", train, test, seed=7) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, anomaly_scores("isolation forest", train, test, seed=8))


def test_unknown_detector_is_refused():
    with pytest.raises(ValueError, match="unknown detector 'svm'"):
        make_detector("svm")


# AUROC ------------------------------------------------------------------------------
def labelled(n, shift, seed=0):
    rng = np.random.default_rng(seed)
    return np.r_[np.zeros(n), np.ones(n)], np.r_[rng.normal(size=n), rng.normal(size=n) + shift]


def test_perfectly_separated_scores_have_auroc_one_and_reversed_zero():
    labels = np.r_[np.zeros(30), np.ones(30)]
    scores = np.r_[np.arange(30.0), 100 + np.arange(30.0)]
    assert auroc(labels, scores) == (1.0, 1.0, 1.0)
    assert auroc(labels, -scores).value == 0.0


def test_identical_distributions_are_near_chance():
    labels, scores = labelled(2000, shift=0.0)
    result = auroc(labels, scores, n_boot=200)
    assert abs(result.value - 0.5) < 0.03
    assert result.low < 0.5 < result.high


def test_bootstrap_agrees_with_sklearn_including_ties():
    rng = np.random.default_rng(2)
    neg, pos = rng.integers(0, 5, 40).astype(float), rng.integers(1, 6, 25).astype(float)
    expected = roc_auc_score(np.r_[np.zeros(40), np.ones(25)], np.r_[neg, pos])
    assert _mann_whitney_auroc(neg, pos) == pytest.approx(expected, abs=1e-12)


def test_interval_contains_the_estimate_and_narrows_with_more_samples():
    small, large = (auroc(*labelled(n, shift=1.0), seed=0) for n in (30, 600))
    for result in (small, large):
        assert result.low <= result.value <= result.high
    assert (large.high - large.low) < 0.5 * (small.high - small.low)
    assert large.low > 0.65  # a shift of one standard deviation: AUROC about 0.76


def test_bootstrap_is_seeded():
    labels, scores = labelled(50, shift=0.5)
    assert auroc(labels, scores, seed=3) == auroc(labels, scores, seed=3)
    assert auroc(labels, scores, seed=3) != auroc(labels, scores, seed=4)


def test_auroc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        auroc(np.zeros(10), np.arange(10.0))
    with pytest.raises(ValueError, match="n_boot"):
        auroc(*labelled(10, 0.0), n_boot=0)


# Tables and figure ------------------------------------------------------------------
@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(40, 6))
    features = {
        "easy": {"good": (clean, rng.normal(size=(40, 6)) + 5),
                 "blind": (clean, rng.normal(size=(40, 6)))},
        "hard": {"good": (clean, rng.normal(size=(40, 6)) + 1),
                 "blind": (clean, rng.normal(size=(40, 6)))},
    }
    return detection_table(features, n_train=20, n_boot=100, seed=0)


def test_detection_table_has_one_row_per_task_lens_and_detector(rows):
    assert len(rows) == 2 * 2 * len(DETECTORS)
    assert set(rows[0]) == {"task", "lens", "detector", "auroc", "low", "high"}
    by_key = {(r["task"], r["lens"], r["detector"]): r for r in rows}
    for detector in DETECTORS:
        assert by_key["easy", "good", detector]["auroc"] == 1.0
        assert by_key["easy", "good", detector]["auroc"] > by_key["easy", "blind", detector]["high"]
    assert all(r["low"] <= r["auroc"] <= r["high"] for r in rows)


def test_detection_table_needs_held_out_prompts():
    clean = np.zeros((10, 2))
    with pytest.raises(ValueError, match="n_train"):
        detection_table({"t": {"lens": (clean, clean)}}, n_train=10)


def test_format_table_has_a_column_per_detector(rows):
    text = format_table(rows)
    header, *lines = text.splitlines()
    assert header.split()[:2] == ["task", "features"] and "LOF" in header
    assert len(lines) == 4
    assert "1.00 [1.00, 1.00]" in lines[0]


def test_plot_detection_draws_each_lens_with_error_bars(rows):
    before = plt.get_fignums()
    fig = plot_detection(rows)
    assert isinstance(fig, Figure) and plt.get_fignums() == before  # not kept by pyplot
    assert [ax.get_title() for ax in fig.axes] == list(DETECTORS)
    ax = fig.axes[list(DETECTORS).index("LOF")]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["easy", "hard"]
    assert [c.get_label() for c in ax.containers] == ["good", "blind"]
    good = ax.containers[0].lines[0].get_ydata()
    expected = [r["auroc"] for r in rows if r["lens"] == "good" and r["detector"] == "LOF"]
    np.testing.assert_allclose(good, expected)
