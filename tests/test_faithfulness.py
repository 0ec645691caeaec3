"""Causal basis extraction (Figs. 8/20), stimulus–response alignment (Fig. 9), Aitchison."""

import math

import pandas as pd
import pytest
import torch

from lensbook import LogitLens, TunedLens, plotting
from lensbook.analysis import causal_basis as cb
from lensbook.analysis import stimulus_response as sr
from lensbook.analysis.metrics import aitchison_inner, aitchison_similarity
from lensbook.core.model import hidden_states, num_layers
from lensbook.core.parts import find_parts
from lensbook.core.stream import editing_stream, stream_at
from tests.tiny_models import make_model, sample_ids


def random_tuned(model, seed=0):
    """A tuned lens whose translators are random (a fresh one *is* the logit lens)."""
    lens = TunedLens.from_model(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lens.translators.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=generator))
    return lens


# --- Aitchison geometry ---------------------------------------------------------------

def test_aitchison_similarity_is_one_with_itself_and_symmetric():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 11, generator=g), torch.randn(5, 11, generator=g)
    w = torch.softmax(torch.randn(5, 11, generator=g), -1)
    for weight in (None, w):
        assert torch.allclose(aitchison_similarity(x, x, weight), torch.ones(5), atol=1e-6)
        assert torch.equal(aitchison_similarity(x, y, weight), aitchison_similarity(y, x, weight))
        assert torch.allclose(aitchison_similarity(x, -x, weight), -torch.ones(5), atol=1e-6)
        assert (aitchison_similarity(x, y, weight).abs() <= 1 + 1e-6).all()


def test_aitchison_ignores_normalisation_and_strength():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(3, 7, generator=g), torch.randn(3, 7, generator=g)
    shifted = x + torch.randn(3, 1, generator=g)  # logits vs log-probabilities
    assert torch.allclose(aitchison_similarity(shifted, y), aitchison_similarity(x, y), atol=1e-6)
    assert torch.allclose(aitchison_similarity(2.5 * x, y), aitchison_similarity(x, y), atol=1e-6)


def test_unweighted_inner_product_is_the_pairwise_log_ratio_form():
    """⟨x, y⟩ = 1/(2D²) Σ_ij log(x_i/x_j) log(y_i/y_j) (Aitchison's definition)."""
    g = torch.Generator().manual_seed(2)
    lx, ly = torch.randn(6, generator=g).double(), torch.randn(6, generator=g).double()
    pairwise = ((lx[:, None] - lx[None]) * (ly[:, None] - ly[None])).sum() / (2 * 6 ** 2)
    assert aitchison_inner(lx, ly).item() == pytest.approx(pairwise.item())


# --- reading and editing the stream -----------------------------------------------------

@pytest.mark.parametrize("family", ["gpt2", "gpt_neox", "llama", "opt"])
def test_stream_at_is_the_hidden_state_and_layer_L_is_before_the_final_norm(family):
    model, ids = make_model(family), sample_ids()
    hs, L = hidden_states(model, ids), num_layers(model)
    assert torch.allclose(stream_at(model, ids, 1), hs[1], atol=1e-6)
    assert torch.allclose(stream_at(model, ids, 0), hs[0], atol=1e-6)
    normed = find_parts(model).final_norm(stream_at(model, ids, L))
    assert torch.allclose(normed, hs[L], atol=1e-5)


def test_an_identity_edit_changes_nothing_and_a_real_one_does():
    model, ids = make_model("gpt2"), sample_ids()
    clean = model(input_ids=ids).logits
    with editing_stream(model, 2, lambda h, prev: h):
        assert torch.equal(model(input_ids=ids).logits, clean)
    with editing_stream(model, 2, lambda h, prev: prev):  # skip block 1
        assert not torch.allclose(model(input_ids=ids).logits, clean)
    with pytest.raises(IndexError):
        with editing_stream(model, 4, lambda h, prev: h):
            pass


# --- causal basis extraction ----------------------------------------------------------

def test_mean_ablation_sets_the_component_to_the_mean_and_keeps_the_rest():
    g = torch.Generator().manual_seed(3)
    h, mean = torch.randn(10, 8, generator=g), torch.randn(8, generator=g)
    v = torch.nn.functional.normalize(torch.randn(8, generator=g), dim=0)
    out = cb.mean_ablate(h, v, mean)
    assert torch.allclose(out @ v, (mean @ v).expand(10), atol=1e-6)
    rest = torch.eye(8) - torch.outer(v, v)
    assert torch.allclose(out @ rest, h @ rest, atol=1e-6)


@pytest.fixture(scope="module")
def gpt2_basis():
    model, ids = make_model("gpt2"), sample_ids(batch=4, seq=12)
    lens = random_tuned(model)
    h = stream_at(model, ids, 2).flatten(0, 1)
    return model, ids, lens, h, cb.extract_basis(lens, h, 2, k=4, max_iter=15)


def test_directions_are_orthonormal_and_sorted_by_lens_influence(gpt2_basis):
    *_, basis = gpt2_basis
    v = basis.vectors
    assert v.shape == (4, 32)
    assert torch.allclose(v @ v.T, torch.eye(4), atol=1e-5)
    assert (basis.lens_influence.diff() <= 0).all() and (basis.lens_influence > 0).all()


def test_recorded_lens_influence_is_recomputed_and_the_lens_is_untouched(gpt2_basis):
    model, ids, lens, h, basis = gpt2_basis
    again = cb.lens_influence(lens, h, 2, basis.vectors, basis.mean)
    assert torch.allclose(again, basis.lens_influence, rtol=1e-4)
    params = list(lens.translators.parameters())
    assert all(p.requires_grad and p.grad is None for p in params)


def test_extracted_directions_beat_random_ones(gpt2_basis):
    model, ids, lens, h, basis = gpt2_basis
    random = torch.nn.functional.normalize(
        torch.randn(16, 32, generator=torch.Generator().manual_seed(4)), dim=1)
    assert basis.lens_influence[0] > cb.lens_influence(lens, h, 2, random).max()


@pytest.mark.parametrize("family", ["gpt2", "gpt_neox"])
def test_a_direction_no_norm_can_see_has_no_influence(family):
    """Every read of a LayerNorm model's stream subtracts the mean over features, so the
    all-ones direction is invisible to the logit lens and to the rest of the model."""
    model, ids = make_model(family).double(), sample_ids(batch=3, seq=8)  # exact enough
    lens, d = LogitLens.from_model(model), model.config.hidden_size
    h = stream_at(model, ids, 1).flatten(0, 1)
    ones = torch.ones(1, d, dtype=h.dtype) / math.sqrt(d)
    basis = cb.CausalBasis(1, ones, torch.zeros(1), h.mean(0) + 5.0)  # a far-off "mean"
    assert cb.lens_influence(lens, h, 1, ones, basis.mean).item() < 1e-12
    assert cb.model_influence(model, ids, basis).item() < 1e-12
    other = cb.CausalBasis(1, torch.eye(d, dtype=h.dtype)[:1], torch.zeros(1), basis.mean)
    assert cb.model_influence(model, ids, other).item() > 1e-4


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_at_the_last_layer_lens_influence_is_model_influence(family):
    """At ``L`` every lens is the model's head, so both influences are one number."""
    model, ids = make_model(family), sample_ids(batch=3, seq=8)
    L = num_layers(model)
    h = stream_at(model, ids, L).flatten(0, 1)
    basis = cb.extract_basis(random_tuned(model), h, L, k=3, max_iter=5)
    model_kl = cb.model_influence(model, ids, basis, batch_size=2)
    assert torch.allclose(model_kl, basis.lens_influence, rtol=1e-3, atol=1e-7)


def test_influence_table_and_correlation(gpt2_basis):
    model, ids, lens, h, basis = gpt2_basis
    table = cb.influence_table("tuned lens", basis, cb.model_influence(model, ids, basis))
    assert list(table.columns) == ["lens", "layer", "direction", "lens_influence",
                                   "model_influence"]
    assert (table["model_influence"] >= 0).all()
    flipped = table.assign(lens="flipped", model_influence=-table["lens_influence"])
    rho = cb.influence_correlation(pd.concat([table, flipped]))
    assert rho["flipped"] == pytest.approx(-1.0)
    assert -1 <= rho["tuned lens"] <= 1
    fig = plotting.plot_influence(table, rho)
    assert fig.axes[0].get_xscale() == "log"


def test_a_sublayer_lens_is_refused():
    model = make_model("gpt2")
    with pytest.raises(ValueError, match="sublayers"):
        cb.decoder(LogitLens.from_model(model, sublayers=True), 1)


# --- stimulus-response alignment ------------------------------------------------------

def test_derangement_has_no_fixed_point():
    g = torch.Generator().manual_seed(0)
    for n in range(2, 9):
        assert (sr.derangement(n, g) != torch.arange(n)).all()
    with pytest.raises(ValueError):
        sr.derangement(1, g)


@pytest.mark.parametrize("family", ["gpt2", "gpt_neox"])
def test_both_lenses_align_perfectly_at_the_last_layer(family):
    """At layer ``L`` the lens's stimulus is the model's response: alignment 1."""
    model, ids = make_model(family), sample_ids(batch=6, seq=10)
    lenses = {"logit lens": LogitLens.from_model(model), "tuned lens": random_tuned(model)}
    cells = sr.stimulus_response(model, lenses, ids, batch_size=3)
    L = num_layers(model)
    assert set(cells["layer"]) == set(range(1, L + 1)) and len(cells) == 2 * L * 6
    last = cells[cells["layer"] == L]
    assert last["alignment"].to_numpy() == pytest.approx(1.0, abs=1e-4)
    assert last["stimulus"].to_numpy() == pytest.approx(last["response"].to_numpy(), rel=1e-4)
    assert cells["alignment"].between(-1 - 1e-6, 1 + 1e-6).all()
    assert (cells.loc[cells["layer"] < L, "alignment"] < 0.9999).any()  # not trivially 1
    summary = sr.alignment_by_layer(cells)
    assert summary.loc[(L, "logit lens"), "mean"] == pytest.approx(1.0, abs=1e-4)


def test_resampling_between_identical_sequences_changes_nothing():
    model = make_model("gpt2")
    ids = sample_ids(batch=1, seq=9).repeat(4, 1)
    cells = sr.stimulus_response(model, {"logit lens": LogitLens.from_model(model)}, ids,
                                 batch_size=4, layers=[1, 2])
    assert cells["stimulus"].abs().max() < 1e-6 and cells["response"].abs().max() < 1e-6  # fp32


def test_a_lone_last_sequence_is_left_out_and_the_plot_draws():
    model = make_model("gpt2")
    cells = sr.stimulus_response(model, {"logit lens": LogitLens.from_model(model)},
                                 sample_ids(batch=5, seq=6), batch_size=2, layers=[1])
    assert sorted(cells["sequence"]) == [0, 1, 2, 3]
    fig = plotting.plot_alignment_by_layer(sr.alignment_by_layer(cells))
    assert fig.axes[0].get_ylabel() == "Aitchison similarity"


def test_random_basis_is_orthonormal_at_the_same_layer_and_mean(gpt2_basis):
    *_, basis = gpt2_basis
    random = cb.random_basis(basis, seed=1)
    assert random.layer == basis.layer and torch.equal(random.mean, basis.mean)
    assert torch.allclose(random.vectors @ random.vectors.T, torch.eye(4), atol=1e-5)
    assert not torch.allclose(random.vectors, cb.random_basis(basis, seed=2).vectors)
