"""Colour scales of per-cell statistics: fixed per statistic, or fitted to what is shown.

Colour can only be compared on one scale. :func:`color_norm` gives each statistic its
*fixed* scale by default, so that a colour means the same number in every panel, for
every lens and every prompt: ``0`` to ``ln V`` nats for entropy, cross-entropy and KL
(``ln V`` is a uniform guess over the ``V`` tokens; larger values take the top colour,
marked by the colour bar's arrow), ``0`` to ``1`` for probabilities, ``1`` to ``V``
(log) for ranks. KL uses a square-root scale, so that the tuned lens's fractions of a nat
still differ in colour next to the logit lens's tens of nats. ``fit="data"`` instead
spans the 2nd to 98th percentile of all the panels' values together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import LogNorm, Normalize, PowerNorm

from lensbook.analysis.statistic import Statistic

FITS = ("fixed", "data")
PERCENTILES = (2, 98)  # fit="data": robust to one outlying row (the logit lens's layer 0)


def color_norm(statistic: Statistic, values: Sequence[np.ndarray], vocab_size: int,
               fit: str = "fixed") -> Normalize:
    """One colour scale for all panels of ``statistic``.

    Args:
        statistic: The statistic coloured.
        values: Each panel's values (``nan`` where undefined).
        vocab_size: ``V``, which sets the fixed scales (``ln V`` nats, rank ``V``).
        fit: ``"fixed"`` (the statistic's own range) or ``"data"`` (the pooled 2nd to
            98th percentile of ``values``).

    Returns:
        A ``LogNorm`` for ranks, a ``PowerNorm`` where the statistic has a ``gamma``, else
        a ``Normalize``.
    """
    if fit not in FITS:
        raise ValueError(f"unknown colour fit {fit!r}: choose one of {FITS}")
    low, high = _range(statistic, values, vocab_size, fit)
    if statistic.log_scale:
        return LogNorm(vmin=max(low, 1.0), vmax=max(high, 10.0))
    high = high if high > low else low + 1.0
    if statistic.gamma != 1.0:
        return PowerNorm(statistic.gamma, vmin=low, vmax=high)
    return Normalize(vmin=low, vmax=high)


def _range(statistic: Statistic, values: Sequence[np.ndarray], vocab_size: int,
           fit: str) -> tuple[float, float]:
    finite = np.concatenate([np.asarray(v)[np.isfinite(v)].ravel() for v in values])
    if fit == "data" and finite.size:
        low, high = np.percentile(finite, PERCENTILES)
        return float(max(low, 0.0)), float(high)
    if statistic.top is not None:
        return (1.0 if statistic.log_scale else 0.0), float(statistic.top(vocab_size))
    if statistic.vmax is not None:
        return 0.0, statistic.vmax
    return 0.0, float(finite.max()) if finite.size else 1.0


def extend(norm: Normalize, values: Sequence[np.ndarray]) -> str:
    """The colour bar's arrows: ``"max"``/``"min"``/``"both"`` where values leave the scale."""
    finite = np.concatenate([np.asarray(v)[np.isfinite(v)].ravel() for v in values])
    above = finite.size and finite.max() > norm.vmax * (1 + 1e-6)
    below = finite.size and finite.min() < norm.vmin - 1e-6 and norm.vmin > 0
    return {(True, True): "both", (True, False): "max", (False, True): "min"}.get(
        (bool(above), bool(below)), "neither")
