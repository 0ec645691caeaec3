"""Statistics of trajectories: one registry that every table, plot and widget uses.

:data:`STATISTICS` holds the named per-cell statistics, each a ``(layers + 1, seq)``
float tensor with ``nan`` where it is undefined (no next token at the last position),
with its unit and colour scale, so that tables, figures and widgets name and colour
them the same way. The functions below are what the registry is made of, plus the
few statistics that are not one number per cell (:func:`top_k`,
:func:`prediction_depth`). Distances between two lenses' predictions are
:func:`lensbook.analysis.metrics.js_divergence` and ``total_variation`` of their
``log_probs``.

To add a statistic: write a ``Trajectory -> (layers + 1, seq)`` function and add one
:class:`Statistic` to :data:`STATISTICS`; :func:`lensbook.analysis.tables.layer_table`,
the heatmaps and the explorer widget pick it up by name.

Example:
    >>> values = STATISTICS["entropy"].values(traj)  # doctest: +SKIP
    >>> STATISTICS["entropy"].label
    'entropy (nats)'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lensbook.analysis import metrics
from lensbook.core.names import lookup
from lensbook.core.trajectory import Trajectory


def top_tokens(traj: Trajectory) -> torch.Tensor:
    """The most likely token id at each layer and position, ``(layers + 1, seq)``."""
    return traj.log_probs.argmax(-1)


def _targets(traj: Trajectory) -> torch.Tensor:
    return traj.targets.expand(traj.log_probs.shape[:-1])


def entropy(traj: Trajectory) -> torch.Tensor:
    """Entropy of each layer's prediction in nats, ``(layers + 1, seq)``."""
    return metrics.entropy(traj.log_probs)


def cross_entropy(traj: Trajectory) -> torch.Tensor:
    """``-log q_l(next token)`` in nats, ``(layers + 1, seq)``; ``nan`` without target."""
    return metrics.cross_entropy(traj.log_probs, _targets(traj))


def kl_to_output(traj: Trajectory) -> torch.Tensor:
    """``KL(p_output ‖ q_l)`` in nats, ``(layers + 1, seq)``; zero on the output row."""
    return metrics.kl_divergence(traj.log_probs[-1], traj.log_probs)


def max_probability(traj: Trajectory) -> torch.Tensor:
    """Probability of the top-1 token, ``(layers + 1, seq)``."""
    return metrics.max_probability(traj.log_probs)


def rank(traj: Trajectory) -> torch.Tensor:
    """1-based rank of the next token, ``(layers + 1, seq)``; ``0`` without target."""
    return metrics.target_rank(traj.log_probs, _targets(traj))


def copy_rate(traj: Trajectory) -> torch.Tensor:
    """1.0 where the top-1 token is the *input* token itself, ``(layers + 1, seq)``.

    The logit lens at the embedding layer of a model with tied embeddings mostly
    "predicts" the token it was given.
    """
    return (top_tokens(traj) == traj.input_ids[None]).float()


def top_k(traj: Trajectory, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` most likely tokens: probabilities and ids, each ``(layers + 1, seq, k)``."""
    logp, ids = traj.log_probs.topk(min(k, traj.log_probs.shape[-1]), dim=-1)
    return logp.exp(), ids


def prediction_depth(traj: Trajectory) -> torch.Tensor:
    """First layer from which the top-1 token stays the output's top-1, ``(seq,)``.

    ``0`` means even the embeddings predict the final token; ``L`` means only the
    output does.
    """
    return depth_of_top1(top_tokens(traj))


def depth_of_top1(top1: torch.Tensor) -> torch.Tensor:
    """:func:`prediction_depth` from the top-1 ids alone, ``(layers + 1, seq) -> (seq,)``."""
    agrees = top1 == top1[-1]  # (layers + 1, seq), last row all True
    # A layer counts when it and every layer above it agree with the output.
    stays = agrees.flip(0).cumprod(0).flip(0)
    return top1.shape[0] - stays.sum(0)


@dataclass(frozen=True)
class Statistic:
    """How to compute, name and colour one per-cell statistic.

    Attributes:
        name: Short key (``"entropy"``).
        title: What it is, for axis labels (``"entropy"``).
        unit: Its unit (``"nats"``), shown in brackets on colour bars; ``""`` if none.
        compute: ``Trajectory -> (layers + 1, seq)`` tensor.
        log_scale: Colour on a log scale (ranks span 1 to the vocabulary size).
        cmap: Matplotlib colormap; dark means a confident or correct prediction.
        vmax: Fixed top of the colour scale, or ``None`` to use the data's maximum.
        table_unit: Its unit in tidy tables, where that differs from ``unit``.
        top: Top of the statistic's fixed colour scale from the vocabulary size ``V``
            (``ln V`` nats, a uniform guess, for entropies and losses; ``V`` for ranks), so
            that colours mean the same for every lens and prompt; ``None`` uses ``vmax``.
        gamma: Exponent of the colour scale (``PowerNorm``); below 1 spreads out the small
            values that matter most (a tuned lens's KL is mostly under one nat).
    """

    name: str
    title: str
    unit: str
    compute: Callable[[Trajectory], torch.Tensor]
    log_scale: bool = False
    cmap: str = "Blues_r"
    vmax: float | None = None
    table_unit: str | None = None
    top: Callable[[int], float] | None = None
    gamma: float = 1.0

    @property
    def label(self) -> str:
        """``"title (unit)"``, e.g. ``"entropy (nats)"``; just the title when unitless."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    def values(self, traj: Trajectory) -> torch.Tensor:
        """The statistic as float, ``(layers + 1, seq)``, ``nan`` where undefined."""
        return self.compute(traj).float()


def _rank_or_nan(traj: Trajectory) -> torch.Tensor:
    r = rank(traj).float()
    return torch.where(r > 0, r, torch.full_like(r, float("nan")))


STATISTICS: dict[str, Statistic] = {
    s.name: s
    for s in [
        Statistic("entropy", "entropy", "nats", entropy, top=math.log),
        Statistic("cross_entropy", "cross-entropy to next token", "nats", cross_entropy,
                  top=math.log),
        Statistic("kl", "KL(output ‖ lens)", "nats", kl_to_output, top=math.log, gamma=0.5),
        Statistic("max_probability", "top-1 probability", "", max_probability,
                  cmap="Blues", vmax=1.0),
        Statistic("rank", "rank of next token", "1 = top", _rank_or_nan, log_scale=True,
                  top=float),
        Statistic("copy_rate", "top-1 is the input token", "", copy_rate, cmap="Blues",
                  vmax=1.0, table_unit="fraction"),
    ]
}


def get_statistic(name: str | Statistic) -> Statistic:
    """Look up a statistic by name (or pass one through), with a helpful error."""
    if isinstance(name, Statistic):
        return name
    return lookup(STATISTICS, name, "statistic")
