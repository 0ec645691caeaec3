"""The residual stream in a block's call: positional or keyword input, tuple or bare output."""

import torch

from lensbook.core.block_io import block_input, block_output, with_block_input, with_block_output


def test_positional_and_keyword_inputs_are_read_and_replaced():
    h, other, new = torch.zeros(2), torch.ones(1), torch.full((2,), 7.0)
    args, kwargs = with_block_input((h, other), {"mask": None}, new)
    assert block_input(args, kwargs) is new and args[1] is other and kwargs == {"mask": None}
    args, kwargs = with_block_input((), {"hidden_states": h, "mask": None}, new)
    assert args == () and kwargs["hidden_states"] is new and kwargs["mask"] is None
    assert block_input((), {"hidden_states": h}) is h


def test_tuple_and_bare_outputs_are_read_and_replaced():
    h, cache, new = torch.zeros(2), object(), torch.ones(2)
    replaced = with_block_output((h, cache), new)
    assert block_output(replaced) is new and replaced[1] is cache
    assert with_block_output(h, new) is new and block_output(h) is h
