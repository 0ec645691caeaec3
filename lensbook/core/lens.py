"""What a lens is, the registry of lens types, and the logit lens.

A lens reads the residual stream at some points of the model (its
:meth:`~Lens.read_points`, e.g. after each block) and maps each hidden state to
logits with the model's own output head (:class:`~lensbook.core.head.Unembed`)::

    logits_i = unembed(transform_hidden(h_i, i))

Everything else in lensbook (lens files, training, the command line, trajectories,
evaluation, widgets) talks to a lens only through :class:`Lens`:

* ``lens_type`` (class attribute): its name in ``config.json`` and in :data:`LENS_TYPES`;
* ``label``: its display name (``"tuned lens"``), used as its name in tables and figures;
* :meth:`~Lens.read_points` and :meth:`~Lens.transform_hidden`;
* :meth:`~Lens.trainable_parameters`, :meth:`~Lens.state` and :meth:`~Lens.load_state`;
* ``config`` (a dataclass with ``to_dict()``) and :meth:`~Lens.from_config`, for lens
  types that are saved (``config_class`` names its dataclass).

Adding a lens type is one module with a :class:`Lens` subclass decorated with
:func:`register_lens`; see :mod:`lensbook.core.tuned` and ``tests/test_lens_registry.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn
from transformers import PreTrainedModel

from lensbook.core.head import Unembed
from lensbook.core.model import (
    ReadPoint,
    num_layers,
    read,
    residual_points,
    sublayer_points,
)
from lensbook.core.names import lookup
from lensbook.core.sublayer import check_mid_points

#: ``lens_type`` -> class, filled by :func:`register_lens`.
LENS_TYPES: dict[str, type[Lens]] = {}


def register_lens(cls: type[Lens]) -> type[Lens]:
    """Class decorator: make ``cls`` loadable by its ``lens_type``."""
    LENS_TYPES[cls.lens_type] = cls
    return cls


def lens_class(lens_type: str) -> type[Lens]:
    """The registered class of ``lens_type``, with an error that lists the known ones."""
    return lookup(LENS_TYPES, lens_type, "lens type")


class Lens(nn.Module):
    """The interface of every lens; by itself it decodes like the logit lens.

    Args:
        unembed: The model's output head.
        num_layers: The model's number of blocks ``L``.
        sublayers: Also read each block's stream after attention (rows ``0``,
            ``0.attn``, ``1``, …); see :mod:`lensbook.core.sublayer`.
    """

    lens_type: ClassVar[str]
    config_class: ClassVar[type | None] = None
    label = "lens"

    def __init__(self, unembed: Unembed, num_layers: int, sublayers: bool = False):
        super().__init__()
        self.unembed = unembed
        self.num_layers = num_layers
        self.sublayers = sublayers

    @classmethod
    def from_model(cls, model: PreTrainedModel, *, sublayers: bool = False) -> Lens:
        """Build the lens from a Hugging Face causal LM.

        Raises:
            NoMidPointError: With ``sublayers=True`` on a parallel-attention model.
        """
        if sublayers:
            check_mid_points(model)
        return cls(Unembed(model), num_layers(model), sublayers)

    def read_points(self) -> list[ReadPoint]:
        """Where the lens reads the model, one point per output row (before the output)."""
        if self.sublayers:
            return sublayer_points(self.num_layers)
        return residual_points(self.num_layers)

    @property
    def num_points(self) -> int:
        """How many read points (rows before the model's output) the lens decodes."""
        return len(self.read_points())

    def transform_hidden(self, h: torch.Tensor, index: int) -> torch.Tensor:
        """Map the hidden state at read point ``index`` into the last layer's space."""
        self._check_index(index)
        return h

    def forward(self, h: torch.Tensor, index: int) -> torch.Tensor:
        """Decode the hidden state at read point ``index``: ``(..., d) -> (..., vocab)``."""
        return self.unembed(self.transform_hidden(h, index))

    def decode_all(self, hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
        """Decode every read point of one forward pass.

        Args:
            hidden_states: The model's ``hidden_states`` (``L + 1`` tensors of shape
                ``(batch, seq, d)``), with the mid-block states of a sub-layer lens
                (:func:`~lensbook.core.model.hidden_states` with ``points``).

        Returns:
            Logits of shape ``(len(read_points), batch, seq, vocab)``.
        """
        if len(hidden_states) != self.num_layers + 1:
            raise ValueError(
                f"expected {self.num_layers + 1} hidden states (embeddings + {self.num_layers} "
                f"blocks), got {len(hidden_states)}"
            )
        return torch.stack([self(read(hidden_states, p), i)
                            for i, p in enumerate(self.read_points())])

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters an optimiser should update (none for the logit lens)."""
        return [p for p in self.parameters() if p.requires_grad]

    def state(self) -> dict[str, torch.Tensor]:
        """The tensors a lens file stores (none for the logit lens)."""
        return {}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load what :meth:`state` returned; raises ``RuntimeError`` when it does not fit."""
        if state:
            raise RuntimeError(f"{self.label} has no state, got keys {sorted(state)[:4]}")

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.num_points:
            raise IndexError(
                f"layer {index} is out of range: this lens decodes layers 0..{self.num_points - 1}"
                f" (layer {self.num_points} is the model's own output)"
            )


@register_lens
class LogitLens(Lens):
    """Decode every layer with the model's own final norm and unembedding.

    Example:
        >>> lens = LogitLens.from_model(model)  # doctest: +SKIP
        >>> out = model(ids, output_hidden_states=True)  # doctest: +SKIP
        >>> logits = lens(out.hidden_states[2], 2)  # doctest: +SKIP
    """

    lens_type = "logit_lens"
    label = "logit lens"
