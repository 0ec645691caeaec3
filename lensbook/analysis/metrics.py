"""Pure functions on distributions over the vocabulary, all in nats.

Every function takes *log*-probabilities (or logits, where it says so) whose
last dimension is the vocabulary, and reduces over that dimension, so shapes
``(..., vocab) -> (...)``. Working in log space keeps them exact where
probabilities underflow.
"""

from __future__ import annotations

import math

import torch

LN2 = math.log(2.0)


def entropy(logp: torch.Tensor) -> torch.Tensor:
    """Shannon entropy ``H(p) = -Σ p log p``; bounds ``0 <= H <= log(vocab)``."""
    return -(logp.exp() * logp).sum(-1)


def kl_divergence(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """Forward KL ``KL(p ‖ q) = Σ p (log p - log q)``; ``>= 0``, zero iff ``p = q``.

    For a lens, ``p`` is the model's output and ``q`` the lens's prediction, the
    quantity the tuned lens is trained to minimise.
    """
    return (logp.exp() * (logp - logq)).sum(-1)


def js_divergence(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon divergence ``½ KL(p ‖ m) + ½ KL(q ‖ m)``, ``m = ½ (p + q)``.

    Symmetric and bounded: ``0 <= JS <= ln 2``. (The reference package's "JS" is
    half the symmetric KL, which is neither bounded nor a JS divergence.)
    """
    logm = torch.logaddexp(logp, logq) - LN2
    return 0.5 * kl_divergence(logp, logm) + 0.5 * kl_divergence(logq, logm)


def total_variation(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """Total variation distance ``½ Σ |p - q|``; ``0 <= TV <= 1``.

    (The reference package reports the *maximum* ``|p - q|`` under this name.)
    """
    return 0.5 * (logp.exp() - logq.exp()).abs().sum(-1)


def cross_entropy(logq: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``-log q(target)``: shapes ``(..., vocab)`` and ``(...)`` -> ``(...)``.

    Targets equal to ``-100`` (no next token, padding) give ``nan``.
    """
    valid = targets >= 0
    picked = logq.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(valid, -picked, torch.full_like(picked, float("nan")))


def max_probability(logp: torch.Tensor) -> torch.Tensor:
    """Probability of the top-1 token; ``1/vocab <= max p <= 1``."""
    return logp.max(-1).values.exp()


def target_rank(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1-based rank of the target token (1 = the argmax), ties broken optimistically.

    Works on logits or log-probabilities alike. Targets of ``-100`` give ``0``.
    """
    valid = targets >= 0
    target_score = logits.gather(-1, targets.clamp(min=0).unsqueeze(-1))
    rank = (logits > target_score).sum(-1) + 1
    return torch.where(valid, rank, torch.zeros_like(rank))


def clr(logx: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Centred log-ratio ``log x - Σ_i w_i log x_i`` (uniform ``w`` by default).

    Maps the simplex onto a Euclidean space (Aitchison geometry). ``logx`` may be
    log-probabilities, logits or a difference of logits: a constant added to every
    entry cancels. ``weight`` (``(..., vocab)``, non-negative, summing to 1) is the
    reference measure of Egozcue & Pawlowsky-Glahn (2016): it lets rare tokens count less.
    """
    centre = logx.mean(-1, keepdim=True) if weight is None else \
        (weight * logx).sum(-1, keepdim=True)
    return logx - centre


def aitchison_inner(logx: torch.Tensor, logy: torch.Tensor,
                    weight: torch.Tensor | None = None) -> torch.Tensor:
    """Aitchison inner product ``Σ_i w_i clr(x)_i clr(y)_i`` (mean over ``i`` unweighted)."""
    product = clr(logx, weight) * clr(logy, weight)
    return product.mean(-1) if weight is None else (weight * product).sum(-1)


def aitchison_similarity(logx: torch.Tensor, logy: torch.Tensor,
                         weight: torch.Tensor | None = None,
                         eps: float = 1e-12) -> torch.Tensor:
    """Cosine of two compositions in Aitchison geometry; ``-1 <= s <= 1``, symmetric.

    ``s = 1`` when ``y`` is ``x`` raised to a positive power (the same *change* of
    the distribution, stronger or weaker). Applied to two changes (``log p' - log p``),
    it asks whether they push the distribution the same way.
    """
    norms = aitchison_inner(logx, logx, weight) * aitchison_inner(logy, logy, weight)
    return aitchison_inner(logx, logy, weight) / norms.sqrt().clamp_min(eps)
