"""The embedded models: one record per architecture family, and where they are shipped.

Everything keyed by family (how to build its config, its name suffix, how its card
names it) lives in :data:`FAMILIES`; the shipped models are :data:`SHIPPED` (size,
family) pairs, and their names, folders and cards all derive from these. To add an
architecture: write its config builder here and add one :class:`Family` record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import GPT2Config, GPTNeoConfig, OPTConfig, PretrainedConfig

if TYPE_CHECKING:
    from lensbook.embedded.pretrain import PretrainConfig

#: Where the embedded models (and their tuned lenses) are shipped inside the package.
ASSETS = Path(__file__).parent.parent / "assets"
DEFAULT_MODEL = "lensbook-tiny"


def _gpt2(cfg: PretrainConfig, eos_id: int) -> PretrainedConfig:
    return GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.seq_len, n_embd=cfg.n_embd,
        n_layer=cfg.n_layer, n_head=cfg.n_head,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
    )


def _gpt_neo(cfg: PretrainConfig, eos_id: int) -> PretrainedConfig:
    """GPT-Neo: global and local (windowed) attention alternate, as in the released models."""
    kinds = ["global" if i % 2 == 0 else "local" for i in range(cfg.n_layer)]
    return GPTNeoConfig(
        vocab_size=cfg.vocab_size, max_position_embeddings=cfg.seq_len,
        hidden_size=cfg.n_embd, num_layers=cfg.n_layer, num_heads=cfg.n_head,
        attention_types=[[[kind], 1] for kind in kinds], window_size=cfg.seq_len // 4,
        embed_dropout=0.0, attention_dropout=0.0, resid_dropout=0.0,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
    )


def _opt(cfg: PretrainConfig, eos_id: int) -> PretrainedConfig:
    """OPT with pre-LayerNorm (like every OPT but 350m), ReLU MLPs, learned positions."""
    return OPTConfig(
        vocab_size=cfg.vocab_size, max_position_embeddings=cfg.seq_len,
        hidden_size=cfg.n_embd, word_embed_proj_dim=cfg.n_embd, ffn_dim=4 * cfg.n_embd,
        num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
        do_layer_norm_before=True, dropout=0.0, attention_dropout=0.0,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
    )


@dataclass(frozen=True)
class Family:
    """One architecture the embedded models come in.

    Attributes:
        key: Name used on the command line and in build records (``"gpt_neo"``).
        short: How the model card names it (``"GPT-Neo"``).
        architecture: The card's one-line description of the architecture.
        suffix: Appended to ``lensbook-<size>`` in the model's name (``"-neo"``).
        make_config: ``(PretrainConfig, eos_id) -> transformers config``.
    """

    key: str
    short: str
    architecture: str
    suffix: str
    make_config: Callable[[PretrainConfig, int], PretrainedConfig]


#: Architectures the embedded models are built in (the paper's Fig. 14 compares them).
FAMILIES = {f.key: f for f in [
    Family("gpt2", "GPT-2", "GPT-2 architecture (`GPT2LMHeadModel`)", "", _gpt2),
    Family("gpt_neo", "GPT-Neo", "GPT-Neo architecture (`GPTNeoForCausalLM`, global and local "
           "attention alternating)", "-neo", _gpt_neo),
    Family("opt", "OPT", "OPT architecture (`OPTForCausalLM`, pre-LayerNorm, ReLU)", "-opt", _opt),
]}

#: (size, family) of every model shipped inside the package: the default ``tiny``, two
#: smaller GPT-2 siblings trained the same way on the same tokens (comparisons across
#: sizes) and two ``nano``-sized models of other families (comparisons across families).
SHIPPED = [("tiny", "gpt2"), ("mini", "gpt2"), ("nano", "gpt2"), ("nano", "gpt_neo"),
           ("nano", "opt")]


def model_name(size: str, family: str = "gpt2") -> str:
    """``lensbook-<size>``, with the family's suffix (none for GPT-2)."""
    return f"lensbook-{size}{FAMILIES[family].suffix}"


#: Short name -> folder of every embedded model (loadable with no network).
EMBEDDED_MODELS = {model_name(size, family): ASSETS / model_name(size, family)
                   for size, family in SHIPPED}
