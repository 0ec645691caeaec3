"""Hidden-state covariances across layers."""

import numpy as np
import pytest
import torch

from lensbook import hidden_states
from lensbook.analysis.drift import covariance_similarity, layer_covariances
from lensbook.plotting import plot_layer_similarity
from tests.tiny_models import make_model, sample_ids


def test_covariances_match_torch_cov():
    model = make_model("gpt2")
    ids = sample_ids(batch=5, seq=6)
    covs = layer_covariances(model, ids, batch_size=2)
    hs = hidden_states(model, ids)
    assert covs.shape == (3, 32, 32)
    for layer in range(3):
        expected = torch.cov(hs[layer].reshape(-1, 32).double().T, correction=0)
        torch.testing.assert_close(covs[layer], expected)


def test_similarity_is_one_on_the_diagonal_and_symmetric():
    torch.manual_seed(0)
    a = torch.randn(4, 8, 8, dtype=torch.float64)
    covs = a @ a.transpose(1, 2)
    sim = covariance_similarity(covs)
    torch.testing.assert_close(sim.diagonal(), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(sim, sim.T)
    scaled = covariance_similarity(torch.stack([covs[0], 3 * covs[0]]))
    assert scaled[0, 1].item() == pytest.approx(1.0)


def test_dropping_outliers_removes_the_largest_variance_dimensions():
    covs = torch.diag_embed(torch.tensor([[1.0, 1.0, 100.0], [1.0, 2.0, 100.0]])).double()
    full = covariance_similarity(covs)
    trimmed = covariance_similarity(covs, drop_outliers=1)
    assert full[0, 1].item() > 0.999  # the shared outlier dimension hides the difference
    assert trimmed[0, 1].item() == pytest.approx(3 / (2**0.5 * 5**0.5))


def test_similarity_plot_shows_the_matrix():
    sim = np.array([[1.0, 0.5], [0.5, 1.0]])
    ax = plot_layer_similarity(sim).axes[0]
    np.testing.assert_allclose(ax.collections[0].get_array().reshape(2, 2), sim)

