"""Statistics match their definitions, computed independently with plain probabilities."""

import math

import pytest
import torch

from lensbook.analysis import metrics

torch.manual_seed(0)
P = torch.randn(5, 11).log_softmax(-1)
Q = (3 * torch.randn(5, 11)).log_softmax(-1)


def test_kl_of_a_distribution_with_itself_is_zero():
    torch.testing.assert_close(metrics.kl_divergence(P, P), torch.zeros(5))


def test_kl_matches_definition_and_is_positive():
    p, q = P.exp(), Q.exp()
    expected = (p * (p / q).log()).sum(-1)
    torch.testing.assert_close(metrics.kl_divergence(P, Q), expected)
    assert (metrics.kl_divergence(P, Q) > 0).all()


def test_js_is_symmetric_bounded_and_matches_definition():
    js = metrics.js_divergence(P, Q)
    torch.testing.assert_close(js, metrics.js_divergence(Q, P))
    assert ((js >= 0) & (js <= math.log(2))).all()
    p, q = P.exp(), Q.exp()
    m = (p + q) / 2
    expected = 0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)
    torch.testing.assert_close(js, expected)


def test_js_of_disjoint_distributions_is_ln2():
    a = torch.tensor([0.0, -torch.inf])
    b = torch.tensor([-torch.inf, 0.0])
    assert metrics.js_divergence(a.clamp(min=-1e4), b.clamp(min=-1e4)).item() == pytest.approx(
        math.log(2)
    )


def test_total_variation_is_half_l1():
    expected = 0.5 * (P.exp() - Q.exp()).abs().sum(-1)
    torch.testing.assert_close(metrics.total_variation(P, Q), expected)
    assert (metrics.total_variation(P, Q) <= 1).all()


def test_entropy_bounds_and_uniform_case():
    uniform = torch.full((11,), -math.log(11))
    assert metrics.entropy(uniform).item() == pytest.approx(math.log(11))
    assert (metrics.entropy(P) >= 0).all() and (metrics.entropy(P) <= math.log(11) + 1e-6).all()


def test_rank_is_one_for_the_argmax_and_counts_better_tokens():
    targets = P.argmax(-1)
    assert (metrics.target_rank(P, targets) == 1).all()
    worst = P.argmin(-1)
    assert (metrics.target_rank(P, worst) == 11).all()


def test_cross_entropy_picks_the_target_and_ignores_padding():
    targets = torch.tensor([0, 3, -100, 10, 1])
    ce = metrics.cross_entropy(P, targets)
    assert ce[1].item() == pytest.approx(-P[1, 3].item())
    assert math.isnan(ce[2].item())
    assert metrics.target_rank(P, targets)[2].item() == 0


def test_max_probability():
    torch.testing.assert_close(metrics.max_probability(P), P.exp().max(-1).values)
