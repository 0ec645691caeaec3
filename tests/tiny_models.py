"""Tiny random-weight models, one per supported architecture, built from configs."""

from __future__ import annotations

import torch
import transformers as tf

VOCAB = 97
_COMMON = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
               intermediate_size=64)
_GQA = dict(_COMMON, num_key_value_heads=2)

CONFIGS = {
    "gpt2": lambda: tf.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=3, n_head=4,
                                  n_positions=64),
    "gpt_neo": lambda: tf.GPTNeoConfig(vocab_size=VOCAB, hidden_size=32, num_layers=3,
                                       num_heads=4, attention_types=[[["global", "local"], 1],
                                                                     [["global"], 1]],
                                       max_position_embeddings=64, window_size=4),
    "gptj": lambda: tf.GPTJConfig(vocab_size=VOCAB, n_embd=32, n_layer=3, n_head=4, rotary_dim=4,
                                  n_positions=64),
    "gpt_neox": lambda: tf.GPTNeoXConfig(**_COMMON),
    "opt": lambda: tf.OPTConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3,
                                num_attention_heads=4, ffn_dim=64, word_embed_proj_dim=32),
    "opt_350m_style": lambda: tf.OPTConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3,
                                           num_attention_heads=4, ffn_dim=64,
                                           word_embed_proj_dim=16, do_layer_norm_before=False),
    "bloom": lambda: tf.BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=3, n_head=4),
    "llama": lambda: tf.LlamaConfig(**_GQA),
    "mistral": lambda: tf.MistralConfig(**_GQA),
    "qwen2": lambda: tf.Qwen2Config(**_GQA),
    "qwen3": lambda: tf.Qwen3Config(**_GQA, head_dim=8),
    "gemma": lambda: tf.GemmaConfig(**_GQA, head_dim=8),
    "gemma2": lambda: tf.Gemma2Config(**_GQA, head_dim=8, final_logit_softcapping=2.0),
    "gemma3": lambda: tf.Gemma3TextConfig(**_GQA, head_dim=8, final_logit_softcapping=2.0),
    "phi3": lambda: tf.Phi3Config(**_GQA, pad_token_id=0),
    "olmo2": lambda: tf.Olmo2Config(**_GQA, pad_token_id=0),
    "cohere": lambda: tf.CohereConfig(**_GQA, logit_scale=0.5, pad_token_id=0),
    "granite": lambda: tf.GraniteConfig(**_GQA, logits_scaling=4.0, pad_token_id=0),
}


def make_model(name: str, seed: int = 0) -> tf.PreTrainedModel:
    """A tiny random-weight causal LM of the named family, in eval mode, fp32.

    Weights are drawn with a larger spread than the default init so that layers
    differ visibly and any mistake in the lens shows up in the logits.
    """
    config = CONFIGS[name]()
    config.name_or_path = f"tiny-{name}"
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(config, key, 0)
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for name_, param in model.named_parameters():
            if param.dim() > 1:
                param.normal_(0, 0.2)
            elif "norm" in name_ or "ln" in name_:
                param.add_(0.1 * torch.randn_like(param))
    model.config.name_or_path = f"tiny-{name}"
    return model.eval()


def sample_ids(batch: int = 2, seq: int = 7, seed: int = 1) -> torch.Tensor:
    """Random token ids, shape ``(batch, seq)``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, seq), generator=generator)
