"""core.frozen: parameters fixed inside the block, their flags restored after, even on error."""

import pytest
import torch

from lensbook.core.frozen import frozen


def test_gradients_flow_through_but_not_into_the_module_and_flags_come_back():
    layer = torch.nn.Linear(3, 2)
    layer.bias.requires_grad_(False)  # a parameter that was frozen before stays frozen
    x = torch.randn(4, 3, requires_grad=True)
    with frozen(layer):
        assert not any(p.requires_grad for p in layer.parameters())
        layer(x).sum().backward()
    assert x.grad is not None and layer.weight.grad is None
    assert layer.weight.requires_grad and not layer.bias.requires_grad
    with pytest.raises(RuntimeError), frozen(layer):
        raise RuntimeError("boom")
    assert layer.weight.requires_grad
