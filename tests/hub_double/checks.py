"""Loading checks against the stand-in Hub, through lensbook's public API.

Run in a process whose environment points at the double (``tests/test_hub_double.py``
does that, as does ``make test-online``)::

    eval "$(python -m tests.hub_double.env)" && python -m pytest tests/hub_double/checks.py

Skipped when the double is not built or the environment does not point at it.
"""

import warnings
from functools import cache

import pytest
import torch
from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

import lensbook
from lensbook import layer_logits, trajectory
from tests.hub_double import configs, env, layout

MODELS = sorted(configs.CONFIGS)
PILE = "monology/pile-uncopyrighted"
PROMPTS = ["The Eiffel Tower is in the city of", "def main():\n    return"]

if not all(layout.is_built(env.hub_cache(), m) for m in MODELS):
    pytest.skip("the stand-in Hub is not built: run `make hub-double`", allow_module_level=True)
if constants.HF_HUB_CACHE != str(env.hub_cache()) or not constants.HF_HUB_OFFLINE:
    pytest.skip("HF_HUB_CACHE/HF_HUB_OFFLINE do not point at the stand-in Hub: run with "
                "`eval \"$(python -m tests.hub_double.env)\"`", allow_module_level=True)


@cache
def load(model_id: str):
    """``lensbook.load_model``, once per model for the whole module."""
    return lensbook.load_model(model_id)


@pytest.fixture(params=MODELS)
def loaded(request):
    return (request.param, *load(request.param))


def test_model_loads_by_hub_id_and_runs(loaded):
    model_id, model, tokenizer = loaded
    config = configs.CONFIGS[model_id]
    ids = tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    logits = model(ids).logits
    assert model.config.name_or_path == model_id
    assert logits.shape == (1, ids.shape[1], config["vocab_size"])
    assert torch.isfinite(logits).all()


def test_published_lens_loads_quietly_and_its_last_row_is_the_models_logits(loaded):
    model_id, model, tokenizer = loaded
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lens = lensbook.load_published(model)
    ids = tokenizer(PROMPTS, return_tensors=None).input_ids[0]
    ids = torch.tensor([ids])
    rows = layer_logits(model, lens, ids)
    assert rows.shape[0] == model.config.num_hidden_layers + 1
    torch.testing.assert_close(rows[-1].float(), model(ids).logits.float())
    logit_rows = layer_logits(model, lensbook.LogitLens.from_model(model), ids)
    assert not torch.equal(rows[0], logit_rows[0]), "the translators were not loaded"


@pytest.mark.parametrize("model_id", MODELS)
def test_hub_client_resolves_files_offline(model_id):
    cached = try_to_load_from_cache(model_id, "config.json")
    assert isinstance(cached, str) and cached == hf_hub_download(model_id, "config.json")
    lens = f"lens/{model_id}/params.pt"
    assert hf_hub_download("AlignmentResearch/tuned-lens", lens, repo_type="space")


def test_published_configs_with_the_misspelled_hash_key_still_check_the_hash():
    model, _ = load("gpt2")  # its lens config says "unemebd_hash"
    assert lensbook.load_published(model).config.unembed_hash is not None


def test_gpt2_has_no_pad_token_and_a_batch_equals_single_prompts():
    model, tokenizer = load("gpt2")
    assert tokenizer.pad_token is None and tokenizer.bos_token_id == 50256
    lens = lensbook.LogitLens.from_model(model)
    batch = trajectory(model, tokenizer, lens, PROMPTS)
    for prompt, traj in zip(PROMPTS, batch, strict=True):
        single = trajectory(model, tokenizer, lens, prompt)
        torch.testing.assert_close(traj.log_probs, single.log_probs, atol=1e-4, rtol=1e-4)


def test_opt_adds_its_bos_once():
    model, tokenizer = load("facebook/opt-125m")
    assert tokenizer.bos_token == tokenizer.eos_token == "</s>" and tokenizer.bos_token_id == 2
    assert tokenizer("Paris").input_ids[0] == 2  # the real tokenizer prepends </s> itself
    traj = trajectory(model, tokenizer, lensbook.LogitLens.from_model(model), "Paris is")
    assert traj.input_ids.tolist().count(2) == 1 and traj.input_ids[0] == 2


def test_pythia_padded_vocabulary_decodes_every_id():
    model, tokenizer = load("EleutherAI/pythia-70m-deduped")
    assert (len(tokenizer), model.config.vocab_size) == (50277, 50304)
    assert tokenizer.convert_ids_to_tokens([0, 1]) == ["<|endoftext|>", "<|padding|>"]
    traj = trajectory(model, tokenizer, lensbook.load_published(model), PROMPTS[0])
    assert traj.log_probs.shape[-1] == 50304
    assert traj.vocab[50300] == "<id 50300>" and traj.vocab[50276] == "  "


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_pile_streams_offline_into_chunks(split):
    _, tokenizer = load("EleutherAI/pythia-70m-deduped")
    texts = lensbook.load_texts(PILE, split, streaming=True)
    assert {"text", "meta"} <= set(next(iter(texts)))
    chunks = lensbook.load_chunks(PILE, tokenizer, 1024, split=split, max_tokens=16 * 1024,
                                  streaming=True)
    assert chunks.input_ids.shape == (16, 1024)
