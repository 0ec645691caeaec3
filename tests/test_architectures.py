"""Every supported decoder family: the lens reproduces the model, and tuned starts as logit."""

import pytest
import torch

from lensbook import LogitLens, TunedLens, layer_logits, load_lens, save_lens
from lensbook.core.parts import UnsupportedModelError, find_parts
from tests.tiny_models import CONFIGS, make_model, sample_ids

ATOL = 1e-5


def test_at_least_fifteen_classes_are_covered():
    classes = {type(make_model(name)).__name__ for name in CONFIGS}
    assert len(classes) >= 15, classes


def test_last_row_is_the_models_own_output(tiny_model, device):
    ids = sample_ids().to(device)
    rows = layer_logits(tiny_model, LogitLens.from_model(tiny_model), ids)
    expected = tiny_model(ids).logits
    assert rows.shape[0] == tiny_model.config.num_hidden_layers + 1
    torch.testing.assert_close(rows[-1].log_softmax(-1), expected.log_softmax(-1))


def test_unembed_of_last_block_output_reproduces_logits(tiny_model, device):
    """Apply the lens's head to the residual stream *before* the final norm."""
    captured = {}
    last_block = find_parts(tiny_model).layers[-1]
    hook = last_block.register_forward_hook(
        lambda module, args, out: captured.update(h=out[0] if isinstance(out, tuple) else out)
    )
    ids = sample_ids().to(device)
    with torch.no_grad():
        logits = tiny_model(ids).logits
    hook.remove()
    lens = LogitLens.from_model(tiny_model)
    with torch.no_grad():
        decoded = lens.unembed(captured["h"])
    torch.testing.assert_close(decoded, logits, atol=ATOL, rtol=1e-4)
    assert (logits.std() > 0.1).item(), "test model is too flat to catch mistakes"


def test_untrained_tuned_lens_equals_logit_lens(tiny_model, device):
    ids = sample_ids().to(device)
    logit_rows = layer_logits(tiny_model, LogitLens.from_model(tiny_model), ids)
    tuned_rows = layer_logits(tiny_model, TunedLens.from_model(tiny_model), ids)
    torch.testing.assert_close(tuned_rows, logit_rows, atol=0, rtol=0)


def test_intermediate_layers_differ_from_output(tiny_model, device):
    """Guard against a lens that silently returns the final logits for every layer."""
    rows = layer_logits(tiny_model, LogitLens.from_model(tiny_model), sample_ids().to(device))
    assert not torch.allclose(rows[0], rows[-1], atol=1e-3)


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_save_load_round_trip_is_exact(tiny_model, tmp_path, fmt, device):
    lens = TunedLens.from_model(tiny_model)
    with torch.no_grad():
        for p in lens.translators.parameters():
            p.normal_(0, 0.05)
    save_lens(lens, tmp_path, formats=(fmt,))
    loaded = load_lens(tmp_path, tiny_model)
    for key, value in lens.state().items():
        assert torch.equal(loaded.state()[key], value), key
    ids = sample_ids().to(device)
    torch.testing.assert_close(
        layer_logits(tiny_model, loaded, ids), layer_logits(tiny_model, lens, ids), atol=0, rtol=0
    )


def test_softcapping_is_applied_by_the_unembedding():
    model = make_model("gemma2")
    lens = LogitLens.from_model(model)
    assert lens.unembed.softcap == 2.0
    rows = layer_logits(model, lens, sample_ids())
    assert rows.abs().max() <= 2.0


def test_post_ln_opt_has_no_final_norm_but_a_projection():
    parts = find_parts(make_model("opt_350m_style"))
    assert parts.final_norm is None
    assert parts.project_out is not None


def test_unknown_architecture_error_names_class_and_attributes():
    model = make_model("gpt2")
    model.transformer.ln_f = None
    del model.transformer.h
    with pytest.raises(UnsupportedModelError, match="GPT2LMHeadModel.*ln_f"):
        find_parts(model)


def test_layer_out_of_range_is_a_clear_error(gpt2):
    lens = LogitLens.from_model(gpt2)
    with pytest.raises(IndexError, match="layers 0..2"):
        lens(torch.zeros(1, 32), 3)
