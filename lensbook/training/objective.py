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
all layers, and each layer needs one exp pass over its logits. On the CPU that pass
goes over the vocabulary in cache-sized tiles with a running maximum (an online
softmax), so the logits of a tile are read from cache rather than from memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lensbook.core.lens import Lens
from lensbook.core.model import Hidden, read

MIN_BLOCK_TOKENS = 256  # fewer tokens per block makes the matmuls inefficient
# On the CPU the vocabulary is taken in tiles of about this many bytes of float32 logits,
# so that the passes over a tile (max, exp, sum, cast) stay in a core's L2 cache.
CPU_TILE_BYTES = 2 * 2**20
MIN_TILE_COLUMNS = 256
# Blocks of ``chunk_mb`` alive at once at the peak, counted for the largest case (a
# soft-capped head, whose target p and its log are held whole): p, log p, a block's exp'd
# logits and their casts to the matmul dtype. Without soft-capping fewer are alive.
LOGIT_BUFFERS = 4


@dataclass
class Target:
    """The model's output distribution on one block of tokens.

    Attributes:
        p: Probabilities, ``(tokens, vocab)``, float32; ``None`` without soft-capping
            (only the moments below are needed then).
        neg_entropy: ``Σ_v p log p`` per token, ``(tokens,)``.
        p_unembed: ``p @ W_U``, ``(tokens, d)``, or ``None`` with soft-capping.
        p_bias: ``p · b_U`` per token, ``(tokens,)`` (zeros without an output bias).
    """

    p: torch.Tensor | None
    neg_entropy: torch.Tensor
    p_unembed: torch.Tensor | None
    p_bias: torch.Tensor


@dataclass
class SoftmaxStats:
    """Sums over the vocabulary of ``q = softmax(z)`` for logits ``z = W_U x + b_U``.

    Attributes:
        lse: ``log Σ_v exp(z_v)`` per row, ``(rows,)``.
        unembed: ``Σ_v q_v W_U[v]``, ``(rows, d)``.
        mean_logit: ``Σ_v q_v z_v``, ``(rows,)`` (zeros unless asked for).
        mean_bias: ``Σ_v q_v b_v``, ``(rows,)`` (zeros without an output bias).
    """

    lse: torch.Tensor
    unembed: torch.Tensor
    mean_logit: torch.Tensor
    mean_bias: torch.Tensor


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


def vocab_tile(device: torch.device, rows: int, vocab: int) -> int:
    """Vocabulary columns per tile for ``rows`` logit rows: the whole vocabulary on a GPU.

    On the CPU a tile of ``rows x columns`` float32 logits takes about
    ``CPU_TILE_BYTES``: measured on the GPT-2-small shape (256 rows, vocabulary 50,257,
    bf16 matmuls, 1 thread), tiles of 1,024-2,048 columns made the KL and its gradient
    about 30% faster than one pass over the whole vocabulary.
    """
    if device.type != "cpu":
        return vocab
    columns = CPU_TILE_BYTES // (4 * max(rows, 1))
    return min(vocab, max(MIN_TILE_COLUMNS, columns // MIN_TILE_COLUMNS * MIN_TILE_COLUMNS))


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
        tile: Vocabulary columns per tile in the KL's passes; None picks
            :func:`vocab_tile` (the whole vocabulary on a GPU).
    """

    def __init__(self, lens: Lens, dtype: torch.dtype = torch.float32,
                 chunk_mb: float | None = None, tile: int | None = None):
        self.lens, self.head = lens, lens.unembed
        self.weight, self.bias = self.head.folded(dtype)  # (vocab, d), (vocab,) or None
        self.softcap = self.head.softcap
        vocab = self.weight.shape[0]
        self.chunk_mb = chunk_mb or default_chunk_mb(self.weight.device, vocab)
        self.tile = tile

    def logits(self, x: torch.Tensor, columns: slice = slice(None)) -> torch.Tensor:
        """Float32 logits of normalised states: ``(rows, d) -> (rows, vocab)``.

        Args:
            x: Normalised states.
            columns: The vocabulary entries to compute (default all of them).
        """
        weight = self.weight[columns]
        z = (x.detach().to(weight.dtype) @ weight.T).float()
        if self.bias is not None:
            z += self.bias[columns]
        return self.head.cap(z)

    @torch.no_grad()
    def target(self, h_last: torch.Tensor) -> Target:
        """The model's output on ``h_last = hidden_states[L]`` (already normalised).

        Without soft-capping only ``p``'s moments are needed (``p`` itself is ``None``),
        and they are taken tile by tile like the lens's; with it, ``p`` is kept whole.
        """
        if not self.softcap:
            stats = self._softmax_stats(h_last, moments=True)
            return Target(None, stats.mean_logit - stats.lse, stats.unembed, stats.mean_bias)
        logp = torch.log_softmax(self.logits(h_last), dim=-1)
        p = logp.exp()
        neg_entropy = (p * logp).sum(-1)
        p_bias = p @ self.bias if self.bias is not None else p.new_zeros(p.shape[0])
        return Target(p, neg_entropy, None, p_bias)  # soft-capped: no p @ W_U shortcut

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
        stats = self._softmax_stats(x.reshape(-1, d))
        cross = (x * target.p_unembed).sum(-1) + target.p_bias  # Σ_v p_v logit_v
        kl = target.neg_entropy - cross + stats.lse.view(n_layers, n)
        return kl, stats.unembed.view(n_layers, n, d) - target.p_unembed

    def _softmax_stats(self, x: torch.Tensor, moments: bool = False) -> SoftmaxStats:
        """What the objective needs of ``q = softmax(logits(x))``, never all of ``q``.

        The vocabulary is taken tile by tile with a running maximum (an online softmax):
        the sums so far are rescaled whenever a tile raises the maximum, so the result
        equals one pass over the whole vocabulary up to float32 rounding.

        Args:
            x: Normalised states ``(rows, d)``.
            moments: Also compute ``Σ_v q_v z_v`` and ``Σ_v q_v b_v`` (for the target).
        """
        rows, d = x.shape
        vocab = self.weight.shape[0]
        tile = self.tile or vocab_tile(x.device, rows, vocab)
        m = x.new_full((rows, 1), float("-inf"))
        total, logit_sum, bias_sum = (x.new_zeros(rows, 1) for _ in range(3))
        unembed = x.new_zeros(rows, d)
        for v0 in range(0, vocab, tile):
            columns = slice(v0, v0 + tile)
            z = self.logits(x, columns)
            m_new = torch.maximum(m, z.amax(-1, keepdim=True))
            rescale = (m - m_new).exp_()  # 0 for the first tile (m is -inf)
            e = (z - m_new).exp_() if moments else z.sub_(m_new).exp_()  # unnormalised q
            total.mul_(rescale).add_(e.sum(-1, keepdim=True))
            unembed.mul_(rescale).add_((e.to(self.weight.dtype) @ self.weight[columns]).float())
            if moments:
                logit_sum.mul_(rescale).add_((e * z).sum(-1, keepdim=True))
                if self.bias is not None:
                    bias_sum.mul_(rescale).add_(e @ self.bias[columns, None])
            m = m_new
        lse = (m + total.log()).squeeze(-1)
        return SoftmaxStats(lse, unembed / total, (logit_sum / total).squeeze(-1),
                            (bias_sum / total).squeeze(-1))

    def _kl_and_grad_explicit(self, x: torch.Tensor, target: Target):
        """The same through explicit logits (needed when soft-capping bends them)."""
        n_layers, n, d = x.shape
        y = self.logits(x.reshape(-1, d)).view(n_layers, n, -1)
        lse = torch.logsumexp(y, dim=-1)
        kl = target.neg_entropy - (y * target.p).sum(-1) + lse
        grad_y = torch.softmax(y, dim=-1) - target.p
        grad_z = grad_y * self.head.cap_grad(y)
        return kl, (grad_z.to(self.weight.dtype) @ self.weight).float()
