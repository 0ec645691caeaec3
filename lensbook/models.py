"""Load a causal language model and find the parts a lens needs.

A lens decodes the residual stream ``h_l`` with the model's own output head:
the final norm, an optional output projection (OPT-350m's ``project_out``), the
unembedding matrix (with its bias, if any) and the final-logit soft-capping of
Gemma 2/3. :func:`find_parts` locates these pieces in any supported Hugging Face
decoder, first from the model's own structure and then from a small table.

Example:
    >>> model, tokenizer = load_model("lensbook-tiny")  # doctest: +SKIP
    >>> parts = find_parts(model)  # doctest: +SKIP
    >>> len(parts.layers) == model.config.num_hidden_layers  # doctest: +SKIP
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

ASSETS = Path(__file__).parent / "assets"

#: Short names of models shipped inside the package (no network needed): the default
#: ``lensbook-tiny``, two smaller GPT-2 siblings trained the same way on the same tokens
#: (for comparisons across sizes) and two ``nano``-sized models of other architectures
#: (for comparisons across families); see ``python -m lensbook.build_default --help``.
EMBEDDED_MODELS = {name: ASSETS / name for name in (
    "lensbook-tiny", "lensbook-mini", "lensbook-nano", "lensbook-nano-neo", "lensbook-nano-opt")}

DEFAULT_MODEL = "lensbook-tiny"

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


class UnsupportedModelError(ValueError):
    """Raised when the parts of a model's output head cannot be found."""


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


def load_model(
    name_or_path: str = DEFAULT_MODEL,
    *,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    device_map: str | dict | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, in evaluation mode.

    Args:
        name_or_path: A Hugging Face Hub name (``"gpt2"``), a local folder, or the
            short name of an embedded model (``"lensbook-tiny"``, the default).
        dtype: Weight dtype, e.g. ``torch.bfloat16`` or ``"auto"``; ``None`` keeps fp32.
        device: Where to put the model (``"cpu"``, ``"cuda"``); ignored with ``device_map``.
        device_map: Passed to ``from_pretrained`` to spread a large model over devices.
        revision: Hub revision (branch, tag or commit).
        trust_remote_code: Run code shipped with the model. Off unless you ask for it.

    Returns:
        ``(model, tokenizer)``, the model in ``eval()`` mode.
    """
    source = str(EMBEDDED_MODELS.get(name_or_path, name_or_path))
    # An explicit float32 default: transformers 5 otherwise loads the checkpoint's dtype
    # (float16 for Pythia and OPT), which is slow on a CPU and not what we document.
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code,
              "dtype": torch.float32 if dtype is None else _as_dtype(dtype)}
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if device is not None and device_map is None:
        model = model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(
        source, revision=revision, trust_remote_code=trust_remote_code
    )
    if name_or_path in EMBEDDED_MODELS:
        model.config.name_or_path = name_or_path
    return model.eval(), tokenizer


def _as_dtype(dtype: torch.dtype | str) -> torch.dtype | str:
    """``"bfloat16"`` -> ``torch.bfloat16``; ``"auto"`` and dtypes pass through."""
    if isinstance(dtype, str) and dtype != "auto":
        return getattr(torch, dtype)
    return dtype


def find_parts(model: PreTrainedModel) -> ModelParts:
    """Find the final norm, unembedding and decoder blocks of ``model``.

    Args:
        model: A Hugging Face causal LM (``...ForCausalLM`` / ``...LMHeadModel``).

    Returns:
        The model's :class:`ModelParts` (references to its modules, not copies).

    Raises:
        UnsupportedModelError: Naming the model class and the attributes looked for.
    """
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
