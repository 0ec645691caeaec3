"""Checks at the edges of a forward pass: the ids going in, the lens, the numbers coming out.

The entry points that run the model (:func:`~lensbook.layer_logits`, trajectories,
evaluation) call these first, so bad input is refused with a message that names the
value and says what to do, instead of an ``IndexError`` from deep inside torch, and a
model whose weights hold NaN is reported instead of yielding trajectories of NaN.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from lensbook.core.errors import InputError, NonFiniteModelError
from lensbook.core.lens import Lens
from lensbook.core.model import context_length, num_layers
from lensbook.core.parts import check_model


def check_ids(model: PreTrainedModel, input_ids: torch.Tensor,
              attention_mask: torch.Tensor | None = None) -> None:
    """Refuse ids the model cannot run: wrong shape, empty, too long or outside the vocabulary.

    Raises:
        TypeError: ``model`` is not a Hugging Face model, or ``input_ids`` not a tensor.
        InputError: Naming the shape, length or id at fault.
    """
    check_model(model)
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"input_ids must be a tensor of shape (batch, seq), got "
                        f"{type(input_ids).__name__}")
    if input_ids.ndim != 2 or input_ids.dtype.is_floating_point:
        raise InputError(f"input_ids must be integer token ids of shape (batch, seq), got "
                         f"{input_ids.dtype} of shape {tuple(input_ids.shape)}")
    if input_ids.numel() == 0:
        raise InputError(f"input_ids of shape {tuple(input_ids.shape)} holds no tokens: "
                         "give at least one token per sequence")
    limit = context_length(model)
    if limit is not None and input_ids.shape[1] > limit:
        raise InputError(f"the ids are {input_ids.shape[1]} tokens long but "
                         f"{model.config.name_or_path or 'the model'} takes at most {limit}: "
                         "shorten them")
    vocab = model.get_input_embeddings().num_embeddings
    low, high = int(input_ids.min()), int(input_ids.max())
    if low < 0 or high >= vocab:
        raise InputError(f"token id {low if low < 0 else high} is outside the model's "
                         f"vocabulary (0..{vocab - 1}): was it made by another tokenizer?")
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise InputError(f"attention_mask has shape {tuple(attention_mask.shape)}, but "
                         f"input_ids {tuple(input_ids.shape)}")


def check_lens_fits(model: PreTrainedModel, lens: Lens) -> None:
    """Refuse a lens built for a model of another width, depth or vocabulary.

    Raises:
        TypeError: ``lens`` is not a lens.
        InputError: Naming both shapes.
    """
    if not isinstance(lens, Lens):
        raise TypeError(f"expected a lens (e.g. LogitLens.from_model(model)), got "
                        f"{type(lens).__name__}")
    text = model.config.get_text_config()
    want = (text.hidden_size, num_layers(model), model.get_output_embeddings().weight.shape[0])
    have = (lens.unembed.d_model, lens.num_layers, lens.unembed.vocab_size)
    if have != want:
        raise InputError(
            f"this {lens.label} is for a model with hidden size {have[0]}, {have[1]} layers "
            f"and {have[2]} tokens, but {model.config.name_or_path or 'the model'} has "
            f"{want[0]}, {want[1]} and {want[2]}: build or load the lens for this model"
        )


def check_finite(model: PreTrainedModel, values: torch.Tensor, what: str,
                 mask: torch.Tensor | None = None) -> None:
    """Refuse NaN or infinite ``values`` (hidden states or logits, ``(batch, seq, ...)``).

    Only positions where ``mask`` is 1 count (padding may hold anything). The message
    names the first parameter of the model that holds NaN or inf, if any.

    Raises:
        NonFiniteModelError: Naming what was non-finite, where, and the likely cause.
    """
    finite = torch.isfinite(values).flatten(2).all(-1)
    if mask is not None:
        finite = finite | ~mask.bool()
    if bool(finite.all()):
        return
    row, col = (~finite).nonzero()[0].tolist()
    bad = nonfinite_parameter(model)
    cause = (f"its parameter {bad} holds NaN or inf: reload or repair the weights" if bad else
             "its weights are finite, so the dtype may overflow: load it with "
             "dtype=torch.float32 (or bfloat16)")
    raise NonFiniteModelError(
        f"{model.config.name_or_path or 'the model'}'s {what} are NaN or infinite "
        f"(first at sequence {row}, position {col}); {cause}"
    )


def nonfinite_parameter(model: PreTrainedModel) -> str | None:
    """The name of the first parameter holding NaN or inf, or ``None``."""
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param).all()):
            return name
    return None
