"""Random weights for a real config, stored the way the real checkpoints are.

The model is built from its config with ``AutoModelForCausalLM.from_config`` under a
fixed seed (so its own ``_init_weights`` decides the scales), cast to the config's
``torch_dtype`` (float16 for Pythia and OPT, float32 for GPT-2) and written as
``model.safetensors``. A tied head is left out of the file, as in the real ones, and
GPT-2's and OPT's tensors carry no ``transformer.``/``model.`` prefix, like their
original checkpoints, so ``from_pretrained`` has to add it back.
"""

from __future__ import annotations

import torch
from safetensors.torch import save
from transformers import AutoConfig, AutoModelForCausalLM

SEED = 0
# Prefixes the original checkpoints lack (they were saved from the base model).
STRIPPED_PREFIX = {"gpt2": "transformer.", "opt": "model."}


def random_model(config: dict, seed: int = SEED) -> torch.nn.Module:
    """A model with the architecture of ``config`` and seeded random weights."""
    kwargs = {k: v for k, v in config.items() if k not in ("model_type", "torch_dtype")}
    hf_config = AutoConfig.for_model(config["model_type"], **kwargs)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(hf_config)
    return model.to(getattr(torch, config.get("torch_dtype", "float32"))).eval()


def safetensors_bytes(model: torch.nn.Module, config: dict) -> bytes:
    """The content of ``model.safetensors`` for ``model``."""
    tied = config.get("tie_word_embeddings", True)
    prefix = STRIPPED_PREFIX.get(config["model_type"], "")
    state = {}
    for key, tensor in model.state_dict().items():
        if tied and key == "lm_head.weight":
            continue
        name = key[len(prefix):] if prefix and key.startswith(prefix) else key
        state[name] = tensor.detach().clone().contiguous()
    return save(state, metadata={"format": "pt"})
