"""The Space ``AlignmentResearch/tuned-lens``: one published lens per model, with its quirks.

Each lens is ``lens/<model id>/config.json`` and ``lens/<model id>/params.pt`` (a torch
state dict ``"0.weight"``, ``"0.bias"``, … of the residual translators, REFERENCE §4).
Translators are random but small, so every tuned-lens row stays close to the logit lens.
The configs vary the way the published files do: some spell the hash key
``unemebd_hash`` (the released reference package's own typo), some carry the correct
``unembed_hash``, older ones have no hash and no ``lens_type``. The hash is the
reference package's hash of the double's own unembedding, so it matches the model.
"""

from __future__ import annotations

import io
import json

import torch

from lensbook import Unembed

REPO_ID = "AlignmentResearch/tuned-lens"
REPO_TYPE = "space"
SCALE = 1e-3  # translator weights ~ N(0, SCALE^2): small, so the lens stays near the logit lens

#: Model id -> how its config.json spells (or lacks) the hash.
HASH_KEYS = {
    "gpt2": "unemebd_hash",
    "EleutherAI/pythia-70m-deduped": None,
    "EleutherAI/pythia-160m-deduped": "unembed_hash",
    "EleutherAI/pythia-410m-deduped": "unemebd_hash",
    "facebook/opt-125m": "unembed_hash",
}


def lens_config(model_id: str, model) -> dict:
    """The lens's ``config.json`` content for ``model`` (the double's model for ``model_id``)."""
    text = model.config.get_text_config()
    config = {"base_model_name_or_path": model_id, "d_model": text.hidden_size,
              "num_hidden_layers": text.num_hidden_layers, "bias": True,
              "base_model_revision": None}
    key = HASH_KEYS[model_id]
    if key is not None:
        config[key] = Unembed(model).reference_hash()
        config["lens_type"] = "linear_tuned_lens"
    return config


def lens_params(config: dict, seed: int) -> bytes:
    """``params.pt``: random small translators ``A_l`` and ``b_l`` for every layer."""
    generator = torch.Generator().manual_seed(seed)
    d = config["d_model"]
    state = {}
    for layer in range(config["num_hidden_layers"]):
        state[f"{layer}.weight"] = torch.randn(d, d, generator=generator) * SCALE
        state[f"{layer}.bias"] = torch.randn(d, generator=generator) * SCALE
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def lens_files(model_id: str, model, seed: int) -> dict[str, bytes]:
    """The two files of ``model_id``'s lens, at their paths inside the Space."""
    config = lens_config(model_id, model)
    return {
        f"lens/{model_id}/config.json": (json.dumps(config, indent=2) + "\n").encode(),
        f"lens/{model_id}/params.pt": lens_params(config, seed),
    }
