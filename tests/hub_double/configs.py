"""The real ``config.json`` (and generation config) of every model the online profiles name.

Written out from the public repositories' files, key by key, including the quirks a
loader meets: Pythia's embedding is padded to 50,304 rows while its tokenizer has
50,277 entries and its head is untied; GPT-2 and OPT tie the head to the embedding;
OPT's BOS and EOS are both ``</s>`` (id 2), its pad is id 1, its embedding is padded
to 50,272 rows and it records ``do_layer_norm_before`` and ``word_embed_proj_dim``;
Pythia and OPT checkpoints are stored in float16, GPT-2's in float32.
"""

from __future__ import annotations

GPT2 = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": 50256,
    "embd_pdrop": 0.1,
    "eos_token_id": 50256,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_ctx": 1024,
    "n_embd": 768,
    "n_head": 12,
    "n_layer": 12,
    "n_positions": 1024,
    "resid_pdrop": 0.1,
    "summary_activation": None,
    "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": 50257,
}


def pythia(hidden: int, layers: int, heads: int) -> dict:
    """The config of a Pythia (deduped) model; sizes differ, everything else is shared."""
    return {
        "architectures": ["GPTNeoXForCausalLM"],
        "bos_token_id": 0,
        "eos_token_id": 0,
        "hidden_act": "gelu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": 4 * hidden,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 2048,
        "model_type": "gpt_neox",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "rotary_emb_base": 10000,
        "rotary_pct": 0.25,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.24.0",
        "use_cache": True,
        "use_parallel_residual": True,
        "vocab_size": 50304,
    }


OPT_125M = {
    "_name_or_path": "facebook/opt-125m",
    "_remove_final_layer_norm": False,
    "activation_dropout": 0.0,
    "activation_function": "relu",
    "architectures": ["OPTForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 2,
    "do_layer_norm_before": True,
    "dropout": 0.1,
    "eos_token_id": 2,
    "ffn_dim": 3072,
    "hidden_size": 768,
    "init_std": 0.02,
    "layerdrop": 0.0,
    "max_position_embeddings": 2048,
    "model_type": "opt",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 1,
    "prefix": "</s>",
    "torch_dtype": "float16",
    "transformers_version": "4.21.0.dev0",
    "use_cache": True,
    "vocab_size": 50272,
    "word_embed_proj_dim": 768,
}

#: Model id -> config.json.
CONFIGS = {
    "gpt2": GPT2,
    "EleutherAI/pythia-70m-deduped": pythia(512, 6, 8),
    "EleutherAI/pythia-160m-deduped": pythia(768, 12, 12),
    "EleutherAI/pythia-410m-deduped": pythia(1024, 24, 16),
    "facebook/opt-125m": OPT_125M,
}

#: Pythia's training checkpoints are branches ``step0`` … ``step143000`` of each repository
#: (``main`` is ``step143000``). The double serves these names as refs to the ``main``
#: snapshot: loading by revision is exercised, the weights do not change with the step.
PYTHIA_STEPS = [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 143000]
REVISIONS = {model: [f"step{n}" for n in PYTHIA_STEPS]
             for model in CONFIGS if model.startswith("EleutherAI/pythia")}

#: Model id -> generation_config.json, for the repositories that have one.
GENERATION_CONFIGS = {
    "gpt2": {"bos_token_id": 50256, "eos_token_id": 50256,
             "transformers_version": "4.26.0.dev0"},
    "facebook/opt-125m": {"_from_model_config": True, "bos_token_id": 2, "eos_token_id": 2,
                          "pad_token_id": 1, "transformers_version": "4.27.0.dev0"},
}

#: Model id -> tokenizer family (see :mod:`tests.hub_double.vocab`).
TOKENIZERS = {
    "gpt2": "gpt2",
    "EleutherAI/pythia-70m-deduped": "neox",
    "EleutherAI/pythia-160m-deduped": "neox",
    "EleutherAI/pythia-410m-deduped": "neox",
    "facebook/opt-125m": "opt",
}
