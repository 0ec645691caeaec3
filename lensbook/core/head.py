"""The model's own output head as a frozen, standalone module.

``Unembed`` maps a residual-stream vector ``h`` (after any number of blocks) to
logits exactly the way the model maps its last block's output::

    logits = softcap(scale · (W_U · project_out(norm_final(h)) + b_U))

It holds frozen *views* of the model's final norm, output projection and
unembedding: new module objects whose parameters share the model's storage (no copy:
a 128k × 4096 head is 1 GiB in bf16, and a notebook with several lenses would hold it
once per lens). They never require gradients and are never written to, so training a
lens never touches (or accumulates gradients in) the model; moving a lens to another
device or dtype replaces its own parameters only, never the model's. It is the one
owner of the head's maths: the fast training path
(:mod:`lensbook.training.objective`) composes :meth:`Unembed.folded`,
:meth:`Unembed.cap` and :meth:`Unembed.cap_grad` instead of restating them.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel

from lensbook.core.parts import find_parts


class Unembed(nn.Module):
    """Final norm, optional output projection, unembedding, logit scale and soft-capping.

    Args:
        model: The Hugging Face causal LM whose output head to share.

    Example:
        >>> unembed = Unembed(model)  # doctest: +SKIP
        >>> logits = unembed(hidden_states[3])  # doctest: +SKIP
    """

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        parts = find_parts(model)
        self.final_norm = _frozen_view(parts.final_norm)
        self.project_out = _frozen_view(parts.project_out)
        # Named "unembed" because content_hash() covers state_dict names, and lens files
        # record that hash: use the `weight` property rather than this attribute.
        self.unembed = _frozen_view(parts.unembed)
        self.softcap = parts.softcap
        self.logit_scale = parts.logit_scale
        self.d_model = model.config.get_text_config().hidden_size
        self.vocab_size = self.unembed.weight.shape[0]

    def normalize(self, h: torch.Tensor) -> torch.Tensor:
        """Apply the final norm and output projection: ``(..., d) -> (..., d_out)``."""
        if self.final_norm is not None:
            h = self.final_norm(h)
        if self.project_out is not None:
            h = self.project_out(h)
        return h

    @property
    def weight(self) -> torch.Tensor:
        """The unembedding matrix ``W_U``, ``(vocab, d_out)``."""
        return self.unembed.weight

    @property
    def device(self) -> torch.device:
        """Where the head lives (where a lens computes)."""
        return self.unembed.weight.device

    def folded(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``W_U`` and ``b_U`` with the logit scale folded in: ``s·(Wx + b) = (sW)x + sb``.

        Returns:
            The detached weight ``(vocab, d_out)`` in ``dtype`` and the float32 bias
            ``(vocab,)`` or ``None``. Without a logit scale the weight is not copied.
        """
        weight, bias = self.weight.detach(), getattr(self.unembed, "bias", None)
        bias = None if bias is None else bias.detach().float()
        scale = self.logit_scale
        if scale is not None:  # Cohere, Granite
            weight, bias = weight * scale, None if bias is None else bias * scale
        return weight.to(dtype), bias

    def cap(self, logits: torch.Tensor) -> torch.Tensor:
        """Gemma 2/3's final soft-capping ``c·tanh(z / c)`` (identity without one)."""
        if self.softcap:
            return self.softcap * torch.tanh(logits / self.softcap)
        return logits

    def cap_grad(self, capped: torch.Tensor) -> torch.Tensor:
        """``d/dz c·tanh(z/c)`` written in the capped logits ``y``: ``1 - (y/c)²``."""
        if self.softcap:
            return 1 - (capped / self.softcap) ** 2
        return torch.ones_like(capped)

    def logits_from_normalized(self, h: torch.Tensor) -> torch.Tensor:
        """Unembed an already-normalised vector: ``(..., d_out) -> (..., vocab)``."""
        logits = self.unembed(h)
        if self.logit_scale is not None:
            logits = logits * self.logit_scale
        return self.cap(logits)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Decode residual-stream vectors to logits: ``(..., d) -> (..., vocab)``."""
        return self.logits_from_normalized(self.normalize(h))

    def content_hash(self) -> str:
        """SHA-256 of every weight of the output head, in float32, in a fixed order.

        Unlike the reference package's hash (which looks only at numpy's printed
        corners of the matrix) this changes when any single weight changes.
        """
        digest = hashlib.sha256()
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
        digest.update(repr(self.softcap).encode())
        if self.logit_scale is not None:  # absent from older hashes, which stay valid
            digest.update(repr(self.logit_scale).encode())
        return digest.hexdigest()

    def reference_hash(self) -> str:
        """The reference package's hash: SHA-256 of numpy's 1-decimal summary of ``W_U``.

        Written to ``config.json`` as ``unembed_hash`` so the reference package can
        load lensbook's lenses without a warning; it ignores all but the corners of
        the matrix, so lensbook checks ``unembed_sha256`` instead when it is present.
        """
        weight = self.unembed.weight.detach().cpu().float().numpy()
        return hashlib.sha256(np.array_str(weight, precision=1).encode()).hexdigest()


def _frozen_view(module: nn.Module | None) -> nn.Module | None:
    """A copy of ``module`` whose parameters and buffers share the original's storage.

    Only the module objects are new (so ``requires_grad``, ``eval()`` and ``.to()`` on
    the lens leave the model alone); each tensor is a detached alias of the model's.
    """
    if module is None:
        return None
    memo = {id(p): nn.Parameter(p.detach(), requires_grad=False) for p in module.parameters()}
    memo |= {id(b): b.detach() for b in module.buffers()}
    module = copy.deepcopy(module, memo)
    return module.eval()
