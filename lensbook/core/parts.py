"""Find the parts of a Hugging Face decoder that a lens needs.

A lens decodes the residual stream ``h_l`` with the model's own output head:
the final norm, an optional output projection (OPT-350m's ``project_out``), the
unembedding matrix (with its bias, if any), the logit scale of Cohere and Granite and
the final-logit soft-capping of Gemma 2/3. :func:`find_parts` locates these pieces in
any supported decoder, first from the model's own structure and then from a small
table. To support a new architecture whose names it does not guess, add its class to
:data:`KNOWN_PATHS`.

Example:
    >>> parts = find_parts(model)  # doctest: +SKIP
    >>> len(parts.layers) == model.config.num_hidden_layers  # doctest: +SKIP
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from lensbook.core.errors import UnsupportedModelError

# Attribute names of the final norm, tried in order on the decoder module.
NORM_NAMES = ("norm", "final_layer_norm", "ln_f", "final_layernorm", "norm_f")
# Attribute names of the list of blocks, tried in order on the decoder module.
LAYER_NAMES = ("layers", "h", "blocks", "block")

# Fallback table: model class -> (final norm path, layers path), relative to the model.
KNOWN_PATHS = {
    "GPT2LMHeadModel": ("transformer.ln_f", "transformer.h"),
    "GPTNeoForCausalLM": ("transformer.ln_f", "transformer.h"),
    "GPTJForCausalLM": ("transformer.ln_f", "transformer.h"),
    "BloomForCausalLM": ("transformer.ln_f", "transformer.h"),
    "GPTNeoXForCausalLM": ("gpt_neox.final_layer_norm", "gpt_neox.layers"),
    "OPTForCausalLM": ("model.decoder.final_layer_norm", "model.decoder.layers"),
    "LlamaForCausalLM": ("model.norm", "model.layers"),
}


# (decoder module, final norm or None, blocks)
_Found = tuple[nn.Module, "nn.Module | None", nn.ModuleList]


@dataclass
class ModelParts:
    """The pieces of a decoder that a lens reuses.

    Attributes:
        final_norm: The norm applied after the last block, or ``None`` for post-LN
            models such as OPT-350m, which have none.
        project_out: A projection applied after the final norm (OPT-350m), or ``None``.
        unembed: The output embedding (``lm_head``), a linear map ``d -> vocab``.
        layers: The decoder blocks, ``num_hidden_layers`` of them.
        softcap: Gemma 2/3's ``final_logit_softcapping``: ``logits = c * tanh(logits / c)``.
        logit_scale: A factor the model multiplies its logits by before any soft-capping:
            Cohere's ``logit_scale``, or ``1 / logits_scaling`` for Granite.
    """

    final_norm: nn.Module | None
    project_out: nn.Module | None
    unembed: nn.Module
    layers: nn.ModuleList
    softcap: float | None = None
    logit_scale: float | None = None


def find_parts(model: PreTrainedModel) -> ModelParts:
    """Find the final norm, unembedding and decoder blocks of ``model``.

    Args:
        model: A Hugging Face causal LM (``...ForCausalLM`` / ``...LMHeadModel``).

    Returns:
        The model's :class:`ModelParts` (references to its modules, not copies).

    Raises:
        TypeError: ``model`` is not a Hugging Face model (e.g. the ``(model, tokenizer)``
            pair that :func:`~lensbook.load_model` returns).
        UnsupportedModelError: An encoder-decoder model, or a decoder whose head cannot
            be found (naming the model class and the attributes looked for).
    """
    check_model(model)
    unembed = model.get_output_embeddings()
    found = _find_generic(model) or _find_in_table(model)
    if unembed is None or found is None:
        raise UnsupportedModelError(
            f"lensbook cannot find the output head of {type(model).__name__}: looked for "
            f"get_output_embeddings(), a final norm named one of {NORM_NAMES} and blocks "
            f"named one of {LAYER_NAMES} on the base model and its decoder, and the table "
            f"entries for {sorted(KNOWN_PATHS)}."
        )
    decoder, norm, layers = found
    project_out = getattr(decoder, "project_out", None)
    text = model.config.get_text_config()
    softcap = getattr(text, "final_logit_softcapping", None)
    return ModelParts(norm, project_out, unembed, layers, softcap, _logit_scale(model, text))


def check_model(model: PreTrainedModel) -> None:
    """Refuse anything but a Hugging Face decoder-only model, with a message saying why.

    Raises:
        TypeError: Not a ``PreTrainedModel``.
        UnsupportedModelError: An encoder-decoder model such as T5 or BART.
    """
    if not isinstance(model, PreTrainedModel):
        hint = (" (load_model returns a (model, tokenizer) pair: unpack it)"
                if isinstance(model, tuple) else "")
        raise TypeError(f"expected a Hugging Face model, got {type(model).__name__}{hint}")
    check_decoder_only(model.config, model.config.name_or_path or type(model).__name__)


def check_decoder_only(config: PretrainedConfig, name: str) -> None:
    """Refuse an encoder-decoder configuration (T5, BART…) before its weights are read.

    Raises:
        UnsupportedModelError: Naming the model and its type.
    """
    if getattr(config, "is_encoder_decoder", False):
        raise UnsupportedModelError(
            f"{name} is an encoder-decoder model ({config.model_type}); lensbook reads "
            "decoder-only causal language models (GPT-2, Pythia, Llama, ...): use one of those"
        )


def _logit_scale(model: PreTrainedModel, text_config) -> float | None:
    """The factor applied to the logits: Cohere multiplies, Granite divides."""
    if getattr(text_config, "logits_scaling", None):
        return 1.0 / text_config.logits_scaling
    scale = getattr(model, "logit_scale", None)
    return float(scale) if isinstance(scale, (int, float)) else None


def _decoder_candidates(model: PreTrainedModel) -> list[nn.Module]:
    base = model.base_model
    inner = [getattr(base, name, None) for name in ("decoder", "language_model", "model")]
    return [base] + [m for m in inner if isinstance(m, nn.Module)]


def _find_generic(model: PreTrainedModel) -> _Found | None:
    """Search the base model (and its decoder) for blocks and a final norm."""
    num_layers = model.config.get_text_config().num_hidden_layers
    for decoder in _decoder_candidates(model):
        layers = _first_attr(decoder, LAYER_NAMES)
        if not isinstance(layers, nn.ModuleList) or len(layers) != num_layers:
            continue
        has_norm_attr = any(hasattr(decoder, name) for name in NORM_NAMES)
        if has_norm_attr:
            return decoder, _first_attr(decoder, NORM_NAMES), layers
    return None


def _find_in_table(model: PreTrainedModel) -> _Found | None:
    paths = KNOWN_PATHS.get(type(model).__name__)
    if paths is None:
        return None
    norm_path, layers_path = paths
    try:
        decoder = model.get_submodule(layers_path.rsplit(".", 1)[0])
        return decoder, model.get_submodule(norm_path), model.get_submodule(layers_path)
    except AttributeError:
        return None


def _first_attr(module: nn.Module, names: tuple[str, ...]) -> nn.Module | None:
    for name in names:
        value = getattr(module, name, None)
        if value is not None:
            return value
    return None
