"""The tuned-lens objective, KL(final ‖ lens), and its gradient, block by block.

For hidden states ``h_l`` and the model's output ``p`` at the same position, the loss
of layer ``l`` is ``KL(p ‖ q_l)`` with ``q_l = softmax(W_U · norm(h_l + A_l h_l + b_l))``.
Full-vocabulary logits are never held for a whole batch: tokens are taken in
blocks, and within a block as many layers as fit in ``chunk_mb`` are unembedded with
one matmul. The gradient with respect to the logits is ``softmax(z) - p``, so it is
formed directly instead of through autograd, and only the cheap part (translator and
final norm, width ``d``) goes through autograd. Without soft-capping the logits are
linear in ``x = norm(...)``, so ``Σ_v p_v z_v = x · (p W_U)``: the cross term and its
gradient cost one ``(tokens, vocab) @ (vocab, d)`` product per token block, shared by
all layers, and each layer needs one exp pass over its logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lensbook.core.lens import Lens
from lensbook.core.model import Hidden, read

MIN_BLOCK_TOKENS = 256  # fewer tokens per block makes the matmuls inefficient
# Blocks of ``chunk_mb`` alive at once at the peak: the target's p (and its log while it
# is formed), a block's exp'd logits and their casts to the matmul dtype.
LOGIT_BUFFERS = 4


@dataclass
class Target:
    """The model's output distribution on one block of tokens.

    Attributes:
        p: Probabilities, ``(tokens, vocab)``, float32.
        neg_entropy: ``Σ_v p log p`` per token, ``(tokens,)``.
        p_unembed: ``p @ W_U``, ``(tokens, d)``, or ``None`` with soft-capping.
        p_bias: ``p · b_U`` per token, ``(tokens,)`` (zeros without an output bias).
    """

    p: torch.Tensor
    neg_entropy: torch.Tensor
    p_unembed: torch.Tensor | None
    p_bias: torch.Tensor


def plan_blocks(n_tokens: int, n_layers: int, vocab: int, chunk_mb: float) -> tuple[int, int]:
    """Tokens and layers per block so that a block's logits take about ``chunk_mb`` MiB.

    Layers are fused into one matmul only while at least ``MIN_BLOCK_TOKENS`` tokens
    of each still fit. The model's output ``p`` on the block's tokens is held as well.

    Returns:
        ``(tokens_per_block, layers_per_block)``.
    """
    rows = max(1, int(chunk_mb * 2**20 / (4 * vocab)))
    layers = max(1, min(n_layers, rows // MIN_BLOCK_TOKENS))
    return max(1, min(n_tokens, rows // layers)), layers


def default_chunk_mb(device: torch.device, vocab: int) -> float:
    """Block size for ``chunk_mb=None``: cache-sized on the CPU, large on a GPU.

    On the CPU, the several passes over a block's logits (max, exp, sum) are far
    cheaper while the block stays in cache: 8 MiB blocks (256 rows at a vocabulary of
    8k) measured 25% faster than 256 MiB ones on 2 cores. A GPU wants big matmuls.
    """
    if device.type == "cpu":
        return max(8.0, MIN_BLOCK_TOKENS * vocab * 4 / 2**20)
    return 1024.0


class KLObjective:
    """Forward KL from the model's output to a tuned lens, with gradients.

    Args:
        lens: The lens being trained; its frozen unembedding decodes every layer.
        dtype: Dtype of the unembedding matmuls (e.g. ``torch.bfloat16`` on a GPU);
            softmax, KL and gradients with respect to the logits stay float32.
        chunk_mb: MiB of float32 logits held at once (see :func:`plan_blocks`); None
            picks :func:`default_chunk_mb`.
    """

    def __init__(self, lens: Lens, dtype: torch.dtype = torch.float32,
                 chunk_mb: float | None = None):
        self.lens, self.head = lens, lens.unembed
        self.weight, self.bias = self.head.folded(dtype)  # (vocab, d), (vocab,) or None
        self.softcap = self.head.softcap
        vocab = self.weight.shape[0]
        self.chunk_mb = chunk_mb or default_chunk_mb(self.weight.device, vocab)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Float32 logits of normalised states: ``(rows, d) -> (rows, vocab)``."""
        z = (x.detach().to(self.weight.dtype) @ self.weight.T).float()
        if self.bias is not None:
            z += self.bias
        return self.head.cap(z)

    @torch.no_grad()
    def target(self, h_last: torch.Tensor) -> Target:
        """The model's output on ``h_last = hidden_states[L]`` (already normalised)."""
        logp = torch.log_softmax(self.logits(h_last), dim=-1)
        p = logp.exp()
        neg_entropy = (p * logp).sum(-1)
        p_unembed = None if self.softcap else (p.to(self.weight.dtype) @ self.weight).float()
        p_bias = p @ self.bias if self.bias is not None else p.new_zeros(p.shape[0])
        return Target(p, neg_entropy, p_unembed, p_bias)

    def accumulate(self, hidden_states: Sequence[torch.Tensor], scale: float) -> torch.Tensor:
        """Add ``scale * ∇ Σ_tokens KL`` to the lens's ``.grad``, for all its read points.

        Args:
            hidden_states: The model's ``L + 1`` hidden states, each ``(..., d)``
                (a :class:`~lensbook.core.model.Hidden` with the mid-block states of a
                sub-layer lens).
            scale: Multiplies the gradient of the summed KL (``1 / tokens per step``
                for a mean).

        Returns:
            The summed (not scaled) KL per read point in nats, ``(points,)``, detached.
        """
        hs = Hidden(hidden_states, getattr(hidden_states, "mid", None))
        hs = hs.map(lambda h: h.reshape(-1, h.shape[-1]))
        inputs = [read(hs, point) for point in self.lens.read_points()]
        n_layers, n_tokens = len(inputs), hs[0].shape[0]
        block_tokens, block_layers = plan_blocks(
            n_tokens, n_layers, self.weight.shape[0], self.chunk_mb
        )
        sums = torch.zeros(n_layers, device=hs[0].device)
        for t0 in range(0, n_tokens, block_tokens):
            rows = slice(t0, t0 + block_tokens)
            target = self.target(hs[-1][rows])
            for l0 in range(0, n_layers, block_layers):
                layers = range(l0, min(n_layers, l0 + block_layers))
                kl = self.backward_block([inputs[i][rows] for i in layers], layers, target,
                                         scale)
                sums[l0:l0 + len(layers)] += kl
        return sums

    def backward_block(
        self, hs: list[torch.Tensor], layers: range, target: Target, scale: float
    ) -> torch.Tensor:
        """Back-propagate ``scale * KL`` for some layers on one token block.

        Args:
            hs: One ``(tokens, d)`` hidden state per layer in ``layers``.
            layers: Their layer indices.
            target: The model's output on the same tokens.
            scale: Gradient multiplier.

        Returns:
            Summed KL per layer, ``(len(layers),)``.
        """
        lens = self.lens
        x = torch.stack([self.head.normalize(lens.transform_hidden(h, i))
                         for h, i in zip(hs, layers, strict=True)])  # (G, n, d)
        with torch.no_grad():
            kl, grad = self._kl_and_grad(x.detach().float(), target)
        x.backward((grad * scale).to(x.dtype))
        return kl.sum(-1)

    def _kl_and_grad(self, x: torch.Tensor, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
        """KL per (layer, token) ``(G, n)`` and its gradient with respect to ``x``."""
        if self.softcap:
            return self._kl_and_grad_explicit(x, target)
        n_layers, n, d = x.shape
        e = self.logits(x.reshape(-1, d))  # (G·n, vocab)
        m = e.amax(-1, keepdim=True)
        e.sub_(m).exp_()  # unnormalised softmax, in place
        z = e.sum(-1, keepdim=True)
        lse = (m + z.log()).view(n_layers, n)
        cross = (x * target.p_unembed).sum(-1) + target.p_bias  # Σ_v p_v logit_v
        kl = target.neg_entropy - cross + lse
        q_unembed = (e.to(self.weight.dtype) @ self.weight).float() / z
        return kl, q_unembed.view(n_layers, n, d) - target.p_unembed

    def _kl_and_grad_explicit(self, x: torch.Tensor, target: Target):
        """The same through explicit logits (needed when soft-capping bends them)."""
        n_layers, n, d = x.shape
        y = self.logits(x.reshape(-1, d)).view(n_layers, n, -1)
        lse = torch.logsumexp(y, dim=-1)
        kl = target.neg_entropy - (y * target.p).sum(-1) + lse
        grad_y = torch.softmax(y, dim=-1) - target.p
        grad_z = grad_y * self.head.cap_grad(y)
        return kl, (grad_z.to(self.weight.dtype) @ self.weight).float()
