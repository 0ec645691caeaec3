"""Read or edit the residual stream after ``layer`` blocks during a forward pass.

Interventions (ablating a direction, swapping a block's update for another sequence's)
need the stream *between* blocks, where the rest of the model will read it.
:func:`editing_stream` puts a hook there: for ``layer < L`` a pre-hook on block
``layer`` (its input is ``hidden_states[layer]``), for ``layer == L`` a hook on the last
block's output, *before* the final norm (Hugging Face's ``hidden_states[L]`` is after
it). The function ``fn`` sees the block's input and, for ``layer ≥ 1``, the stream one
block earlier, so it can rewrite the update of block ``layer - 1``.

Example:
    >>> with editing_stream(model, 3, lambda h, prev: h * 0):  # doctest: +SKIP
    ...     logits = model(ids).logits  # blocks 3.. see a zeroed stream
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers import PreTrainedModel

from lensbook.core.block_io import (
    block_input,
    block_output,
    with_block_input,
    with_block_output,
)
from lensbook.core.model import num_layers
from lensbook.core.parts import find_parts

#: ``fn(h, previous)``: the stream after ``layer`` blocks ``(batch, seq, d)`` and the
#: stream one block earlier (``None`` at ``layer == 0``) -> the stream the model goes on with.
StreamEdit = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


@contextmanager
def editing_stream(model: PreTrainedModel, layer: int, fn: StreamEdit) -> Iterator[None]:
    """Within the block, forward passes continue from ``fn(h_layer, h_{layer-1})``.

    Args:
        model: A causal LM.
        layer: ``0 .. L``: the stream after this many blocks (``L``: the last block's
            output before the final norm, what the head reads).
        fn: The edit (:data:`StreamEdit`); return ``h`` itself to only read it.

    Raises:
        IndexError: ``layer`` outside ``0 .. L``.
    """
    blocks = find_parts(model).layers
    if not 0 <= layer <= num_layers(model):
        raise IndexError(f"layer {layer} is outside 0..{num_layers(model)}")
    handle = _hook(blocks, layer, fn)
    try:
        yield
    finally:
        handle.remove()


def _hook(blocks: nn.ModuleList, layer: int, fn: StreamEdit):
    """One hook: on block ``layer - 1``'s output (it sees both ends), or block 0's input."""
    if layer == 0:
        def before(module, args, kwargs):
            return with_block_input(args, kwargs, fn(block_input(args, kwargs), None))
        return blocks[0].register_forward_pre_hook(before, with_kwargs=True)

    def after(module, args, kwargs, output):
        return with_block_output(output, fn(block_output(output), block_input(args, kwargs)))
    return blocks[layer - 1].register_forward_hook(after, with_kwargs=True)


@torch.no_grad()
def stream_at(model: PreTrainedModel, input_ids: torch.Tensor, layer: int,
              batch_size: int = 8) -> torch.Tensor:
    """The stream after ``layer`` blocks at every token: ``(sequences, seq, d)``.

    Unlike ``hidden_states[L]``, ``layer == L`` gives the last block's output before the
    final norm.
    """
    found: list[torch.Tensor] = []

    def keep(h: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
        found.append(h.detach())
        return h

    with editing_stream(model, layer, keep):
        for batch in input_ids.split(batch_size):
            model.base_model(input_ids=batch.to(model.device))  # no head needed
    return torch.cat(found)
