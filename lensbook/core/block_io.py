"""The residual stream in a decoder block's call: where hooks read and replace it.

Hugging Face blocks take the stream as their first positional argument or as the keyword
``hidden_states``, and return it alone or as the first item of a tuple (with attention
weights or a cache after it). Hooks on blocks and sublayers use these four functions
instead of repeating that convention.
"""

from __future__ import annotations

import torch


def block_input(args: tuple, kwargs: dict) -> torch.Tensor:
    """The stream a block (or sublayer) is called with."""
    return args[0] if args else kwargs["hidden_states"]


def with_block_input(args: tuple, kwargs: dict, h: torch.Tensor) -> tuple[tuple, dict]:
    """The same call's ``(args, kwargs)`` with ``h`` as the stream."""
    if args:
        return (h, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": h}


def block_output(output: object) -> torch.Tensor:
    """The stream a block (or sublayer) returns."""
    return output[0] if isinstance(output, tuple) else output


def with_block_output(output: object, h: torch.Tensor) -> object:
    """The same return value with ``h`` as the stream."""
    return (h, *output[1:]) if isinstance(output, tuple) else h
