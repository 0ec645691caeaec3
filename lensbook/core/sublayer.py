"""The residual stream in the middle of a block: after its attention, before its MLP.

A sequential block computes ``m = h + attn(h)`` and then ``h' = m + mlp(m)`` (with the
family's norms around each branch). ``m`` is what a sub-layer lens reads at
``ReadPoint(i, "attn")``. Hugging Face does not return it, so :func:`capture_mid`
catches it with forward hooks on the one module of each block that sees it:

* the input of the norm before the MLP (``ln_2`` in GPT-2, ``post_attention_layernorm``
  in the Llama family, ``pre_feedforward_layernorm`` in Gemma 2/3, ``final_layer_norm``
  in OPT), or of the MLP itself where no norm precedes it (OLMo 2's sandwich norms);
* the *output* of the post-attention norm in post-LN blocks (OPT-350m, BLOOM with
  ``apply_residual_connection_post_layernorm``), where the normed sum is what the MLP
  reads and adds to.

Parallel-attention blocks (GPT-J, CodeGen, Phi-1/2, Cohere, GPT-NeoX and StableLM with
``use_parallel_residual``, Falcon with ``parallel_attn`` or its new decoder) compute
``h' = h + attn(h) + mlp(h)``: there is no stream between the two, and asking for it
raises :class:`NoMidPointError`. To support another sequential family, add its
``model_type`` to :data:`MID_POINTS`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from transformers import PreTrainedModel

from lensbook.core.block_io import block_input, block_output
from lensbook.core.parts import find_parts

#: ``model_type`` -> (module of each block that sees the mid-block stream, ``"input"`` or
#: ``"output"`` of that module). Only sequential families whose blocks were read.
MID_POINTS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("gpt2", "gpt_neo"), ("ln_2", "input")),
    "opt": ("final_layer_norm", "input"),
    **dict.fromkeys(("gemma2", "gemma3", "gemma3_text"), ("pre_feedforward_layernorm", "input")),
    **dict.fromkeys(("olmo2", "olmo3"), ("mlp", "input")),
    **dict.fromkeys(
        ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma",
         "phi3", "granite", "olmo", "smollm3", "starcoder2", "bloom", "gpt_neox", "stablelm",
         "falcon"),
        ("post_attention_layernorm", "input")),
}

#: Families whose blocks are always parallel (attention and MLP both read the block input).
PARALLEL_FAMILIES = {"gptj": "GPT-J", "codegen": "CodeGen", "phi": "Phi-1/Phi-2",
                     "cohere": "Cohere (Command-R)", "cohere2": "Cohere 2"}


class NoMidPointError(ValueError):
    """The model has no residual stream between a block's attention and its MLP."""


def parallel_family(config) -> str | None:
    """The name of ``config``'s parallel-attention family, or ``None`` for sequential blocks."""
    kind = config.model_type
    if kind in PARALLEL_FAMILIES:
        return PARALLEL_FAMILIES[kind]
    if getattr(config, "use_parallel_residual", False):
        return f"{kind} with use_parallel_residual=True"
    if kind == "falcon" and (config.parallel_attn or config.new_decoder_architecture):
        return "Falcon with parallel attention"
    return None


def mid_site(model: PreTrainedModel) -> tuple[str, str]:
    """``(module name in each block, "input" | "output")`` that sees the mid-block stream.

    Raises:
        NoMidPointError: For parallel-attention families (naming the family) and for
            families not in :data:`MID_POINTS`.
    """
    config = model.config.get_text_config()
    family = parallel_family(config)
    if family is not None:
        raise NoMidPointError(
            f"{family} blocks run attention and MLP in parallel on the same input, so "
            f"there is no residual stream after attention (ReadPoint(i, 'attn')); use the "
            f"points after each block instead"
        )
    if config.model_type == "opt" and not config.do_layer_norm_before:
        return "self_attn_layer_norm", "output"  # post-LN: the normed sum feeds the MLP
    if getattr(config, "apply_residual_connection_post_layernorm", False):
        return "post_attention_layernorm", "output"
    if config.model_type not in MID_POINTS:
        raise NoMidPointError(
            f"lensbook does not know where the mid-block stream of {config.model_type!r} "
            f"blocks is; add the model type to MID_POINTS in lensbook/core/sublayer.py "
            f"(known: {sorted(MID_POINTS)})"
        )
    return MID_POINTS[config.model_type]


def check_mid_points(model: PreTrainedModel) -> None:
    """Raise :class:`NoMidPointError` unless ``model`` has a readable mid-block stream."""
    mid_site(model)


def has_mid_points(model: PreTrainedModel) -> bool:
    """Whether sub-layer lenses (``sublayers=True``) can read ``model`` between attention and MLP.

    ``False`` for parallel-attention blocks (GPT-J, Pythia's GPT-NeoX, …) and for families
    lensbook does not know; :func:`check_mid_points` says which and why.
    """
    try:
        mid_site(model)
    except NoMidPointError:
        return False
    return True


@contextmanager
def capture_mid(model: PreTrainedModel, layers: list[int]) -> Iterator[dict[int, torch.Tensor]]:
    """Hooks that record the mid-block stream of ``layers`` during forward passes.

    Example:
        >>> with capture_mid(model, [0, 2]) as mid:  # doctest: +SKIP
        ...     model(ids)
        >>> mid[2].shape  # as the block sees it, e.g. (batch, seq, d) # doctest: +SKIP

    Yields:
        A dict ``layer -> tensor`` filled by the next forward pass (OPT's is flattened
        to ``(tokens, d)``; :func:`lensbook.core.model.hidden_states` reshapes it).
    """
    name, side = mid_site(model)
    blocks = find_parts(model).layers
    mid: dict[int, torch.Tensor] = {}
    handles = []
    for layer in layers:
        module = blocks[layer].get_submodule(name)
        if side == "input":
            handles.append(module.register_forward_pre_hook(_input_hook(mid, layer),
                                                            with_kwargs=True))
        else:
            handles.append(module.register_forward_hook(_output_hook(mid, layer)))
    try:
        yield mid
    finally:
        for handle in handles:
            handle.remove()


def _input_hook(mid: dict[int, torch.Tensor], layer: int):
    def hook(module, args, kwargs):
        mid[layer] = block_input(args, kwargs)
    return hook


def _output_hook(mid: dict[int, torch.Tensor], layer: int):
    def hook(module, args, output):
        mid[layer] = block_output(output)
    return hook
