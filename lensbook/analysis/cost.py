"""What each lens cost to make: tokens read and seconds, from its own provenance record.

Trained lenses (:func:`lensbook.train_lens`) and fitted Jacobian lenses record
``tokens`` and ``seconds`` in ``lens.config.training``; the logit lens costs nothing.
A lens loaded from a file made elsewhere may lack the seconds (shown as missing).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from lensbook.core.lens import Lens


def lens_costs(lenses: Mapping[str, Lens]) -> pd.DataFrame:
    """Tokens and seconds each lens needed, one row per lens.

    Args:
        lenses: Name -> lens.

    Returns:
        A frame indexed by lens name with columns ``tokens`` and ``seconds`` (NaN where
        the lens does not record it) and ``made by`` (``"trained"``, ``"estimated"``,
        ``"nothing to learn"`` or ``"unknown"``).
    """
    rows = {name: _cost(lens) for name, lens in lenses.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["tokens", "seconds", "made by"])


def _cost(lens: Lens) -> tuple[float, float, str]:
    config = getattr(lens, "config", None)
    if config is None:
        return 0, 0.0, "nothing to learn"
    record = config.training or {}
    how = "estimated" if "n_prompts" in record else "trained" if "steps" in record else "unknown"
    return record.get("tokens", float("nan")), record.get("seconds", float("nan")), how
