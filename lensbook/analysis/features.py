"""Prompts as feature vectors: per-layer lens statistics at their last tokens (paper Table 1).

Each prompt becomes one vector: statistics of a lens's prediction (entropy, KL to the
output, top-1 probability) at every layer and at its last positions, flattened. The
*final layer* baseline (:data:`BASELINE`) sees only the model's output distribution:
its top log-probabilities and entropy. :mod:`lensbook.analysis.detectors` fits detectors on them.

Example:
    >>> feats = prompt_features(model, tokenizer, lenses, prompts, positions=4)  # doctest: +SKIP
    >>> feats["tuned lens"].shape  # (prompts, (layers + 1) * 4 * 3)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel

from lensbook.analysis import metrics
from lensbook.analysis.statistic import get_statistic
from lensbook.core.lens import Lens
from lensbook.core.run import trajectories_by_lens
from lensbook.core.trajectory import Trajectory

LENS_STATISTICS = ("entropy", "kl", "max_probability")
BASELINE = "final layer"  # name of the output-only feature set in tables and figures


def lens_features(
    trajs: Sequence[Trajectory], positions: int = 1, statistics: Sequence[str] = LENS_STATISTICS
) -> np.ndarray:
    """Per-layer statistics at the last ``positions`` tokens, flattened per prompt.

    Args:
        trajs: Trajectories of the prompts (all positions, or only the last ones:
            ``trajectories_by_lens(..., last_positions=positions)``).
        positions: How many of the last positions to use.
        statistics: Names in :data:`lensbook.analysis.statistic.STATISTICS` that are defined at
            those positions (``cross_entropy`` and ``rank`` are not at the last one).

    Returns:
        Shape ``(prompts, (layers + 1) * positions * len(statistics))``, ordered layer,
        position, statistic; layer ``layers`` is the model's output.

    Raises:
        ValueError: For no trajectories, ``positions < 1``, or a prompt shorter than that.
    """
    _check(trajs, positions)
    stats = [get_statistic(s) for s in statistics]
    rows = [torch.stack([s.values(t)[:, -positions:] for s in stats], -1) for t in trajs]
    return torch.stack(rows).flatten(1).numpy().astype(np.float64)


def output_features(trajs: Sequence[Trajectory], positions: int = 1, k: int = 8) -> np.ndarray:
    """The baseline: the output's ``k`` largest log-probabilities and entropy per position.

    Returns:
        Shape ``(prompts, positions * (k + 1))``.
    """
    _check(trajs, positions)
    logp = torch.stack([t.log_probs[-1, -positions:] for t in trajs])  # (prompts, pos, vocab)
    feats = torch.cat([logp.topk(k, dim=-1).values, metrics.entropy(logp)[..., None]], -1)
    return feats.flatten(1).numpy().astype(np.float64)


def _check(trajs: Sequence[Trajectory], positions: int) -> None:
    if not trajs:
        raise ValueError("no trajectories given")
    if positions < 1 or any(len(t) < positions for t in trajs):
        raise ValueError(f"positions must be between 1 and the shortest prompt, got {positions}")


def prompt_features(
    model: PreTrainedModel,
    tokenizer,
    lenses: Mapping[str, Lens],
    prompts: Sequence[str],
    *,
    positions: int = 1,
    statistics: Sequence[str] = LENS_STATISTICS,
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """Features of ``prompts`` for every lens, plus the :data:`BASELINE`, in batches.

    Returns:
        ``{lens name: (prompts, features)}`` for each lens, and ``BASELINE``.
    """
    parts: dict[str, list[np.ndarray]] = {name: [] for name in [*lenses, BASELINE]}
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        by_lens = trajectories_by_lens(model, tokenizer, lenses, batch, last_positions=positions)
        for name, trajs in by_lens.items():
            parts[name].append(lens_features(trajs, positions, statistics))
        parts[BASELINE].append(output_features(next(iter(by_lens.values())), positions))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}
