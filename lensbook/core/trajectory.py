"""A trajectory: one sequence seen through one lens, layer by layer (a plain record).

:class:`Trajectory` holds log-probabilities for every read point of the lens and
position, the input tokens and the true next tokens, and labels them. Running lenses
to get trajectories is :mod:`lensbook.core.run`; statistics of trajectories (entropy,
KL to the output, rank of the next token, prediction depth…) are the registry
:mod:`lensbook.analysis.statistic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lensbook.core.tokens import readable_token

NO_TARGET = -100  # the target of the last position (and of padding), as in Hugging Face


@dataclass
class Trajectory:
    """One sequence seen through one lens, layer by layer.

    Attributes:
        log_probs: Float32 log-probabilities, ``(layers + 1, seq, vocab)``; row ``layers``
            is the model's own output.
        input_ids: The sequence's token ids, ``(seq,)``.
        targets: The true next token at each position, ``(seq,)``; ``-100`` where there
            is none (the last position).
        tokens: The input tokens as the tokenizer stores them (``"Ġthe"``).
        vocab: The stored token string of every id the model can predict.
        lens_label: Which lens produced the rows (``"logit lens"``, ``"tuned lens"``).
        byte_level: Whether ``vocab`` is byte-level BPE (for readable labels).
        point_names: Names of the rows before the output (the lens's read points);
            ``None`` means ``"0" … "L-1"``.
    """

    log_probs: torch.Tensor
    input_ids: torch.Tensor
    targets: torch.Tensor
    tokens: list[str]
    vocab: Sequence[str]
    lens_label: str
    byte_level: bool | None = None
    point_names: list[str] | None = None

    @property
    def num_layers(self) -> int:
        """``L``, the number of blocks; rows are layers ``0..L`` with ``L`` the output."""
        return self.log_probs.shape[0] - 1

    def __len__(self) -> int:
        return self.log_probs.shape[1]

    # Labels -------------------------------------------------------------------------
    def label(self, token_id: int, max_chars: int | None = None) -> str:
        """A readable label for any token id (``Ġ`` as ``␣``, ``Ċ`` as a visible newline)."""
        return readable_token(self.vocab[token_id], max_chars=max_chars,
                              byte_level=self.byte_level)

    def input_labels(self, max_chars: int | None = None) -> list[str]:
        """Readable labels of the input tokens, ``seq`` of them."""
        return [self.label(int(i), max_chars) for i in self.input_ids]

    def target_labels(self, max_chars: int | None = None) -> list[str]:
        """Readable labels of the true next tokens (``""`` where there is none)."""
        return ["" if t < 0 else self.label(int(t), max_chars) for t in self.targets]

    def layer_names(self) -> list[str]:
        """``["0", "1", …, "L-1", "output"]``: what each row is."""
        names = self.point_names or [str(layer) for layer in range(self.num_layers)]
        return [*names, "output"]
