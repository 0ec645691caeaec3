"""Named per-cell statistics of a trajectory, and distances between two trajectories.

:data:`STATISTICS` lists what a trajectory heatmap can be coloured by, each with
its unit and colour scale, so that figures and widgets label their colour bars
the same way. Each value is a ``(layers + 1, seq)`` float tensor with ``nan``
where the statistic is undefined (no next token at the last position).

Example:
    >>> values = STATISTICS["entropy"].values(traj)  # doctest: +SKIP
    >>> STATISTICS["entropy"].label
    'entropy (nats)'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lensbook import metrics
from lensbook.trajectory import Trajectory


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
    """

    name: str
    title: str
    unit: str
    compute: Callable[[Trajectory], torch.Tensor]
    log_scale: bool = False
    cmap: str = "Blues_r"
    vmax: float | None = None

    @property
    def label(self) -> str:
        """``"title (unit)"``, e.g. ``"entropy (nats)"``; just the title when unitless."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    def values(self, traj: Trajectory) -> torch.Tensor:
        """The statistic as float, ``(layers + 1, seq)``, ``nan`` where undefined."""
        return self.compute(traj).float()


def _rank(traj: Trajectory) -> torch.Tensor:
    rank = traj.rank().float()
    return torch.where(rank > 0, rank, torch.full_like(rank, float("nan")))


STATISTICS: dict[str, Statistic] = {
    s.name: s
    for s in [
        Statistic("entropy", "entropy", "nats", Trajectory.entropy),
        Statistic("cross_entropy", "cross-entropy to next token", "nats",
                  Trajectory.cross_entropy),
        Statistic("kl", "KL(output ‖ lens)", "nats", Trajectory.kl_to_output),
        Statistic("max_probability", "top-1 probability", "",
                  Trajectory.max_probability, cmap="Blues", vmax=1.0),
        Statistic("rank", "rank of next token", "1 = top", _rank, log_scale=True),
    ]
}


def get_statistic(name: str | Statistic) -> Statistic:
    """Look up a statistic by name (or pass one through), with a helpful error."""
    if isinstance(name, Statistic):
        return name
    if name not in STATISTICS:
        raise ValueError(f"unknown statistic {name!r}: choose one of {sorted(STATISTICS)}")
    return STATISTICS[name]


def _check_same_tokens(a: Trajectory, b: Trajectory) -> None:
    if a.log_probs.shape != b.log_probs.shape or not torch.equal(a.input_ids, b.input_ids):
        raise ValueError(
            "the two trajectories must cover the same tokens with the same model: shapes "
            f"{tuple(a.log_probs.shape)} and {tuple(b.log_probs.shape)}"
        )


def js_divergence(a: Trajectory, b: Trajectory) -> torch.Tensor:
    """Jensen–Shannon divergence between two lenses' predictions, ``(layers + 1, seq)``.

    Symmetric, in nats, ``0 <= JS <= ln 2``; the output rows of two lenses on the same
    model agree, so the last row is zero.
    """
    _check_same_tokens(a, b)
    return metrics.js_divergence(a.log_probs, b.log_probs)


def total_variation(a: Trajectory, b: Trajectory) -> torch.Tensor:
    """Total variation ``½ Σ |p - q|`` between two lenses' predictions, ``(layers + 1, seq)``."""
    _check_same_tokens(a, b)
    return metrics.total_variation(a.log_probs, b.log_probs)
