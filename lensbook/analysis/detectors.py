"""Detect unusual prompts from their trajectories with unsupervised detectors (paper Table 1).

Each prompt is one feature vector (:mod:`lensbook.analysis.features`). A detector from
scikit-learn (isolation forest, local outlier factor) is fitted on clean prompts only
and scores held-out clean and injected prompts; the AUROC of those scores says how
well the trajectories separate the two, with a bootstrap confidence interval.

Example:
    >>> rows = detection_table({"len": {"tuned lens": (clean, injected)}}, 40)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from lensbook.analysis.features import BASELINE

__all__ = ["BASELINE", "DETECTORS", "AUROC", "anomaly_scores", "auroc", "detection_table",
           "format_table", "make_detector"]

DETECTORS = ("isolation forest", "LOF")


def make_detector(name: str, seed: int = 0, n_train: int = 40) -> Pipeline:
    """A standardising pipeline ending in an unsupervised detector.

    Args:
        name: ``"isolation forest"`` or ``"LOF"`` (local outlier factor, ``novelty=True``
            so that it can score new points).
        seed: Random state of the isolation forest.
        n_train: Training set size; LOF uses ``min(20, n_train - 1)`` neighbours.

    Raises:
        ValueError: For an unknown detector.
    """
    if name == "isolation forest":
        detector = IsolationForest(random_state=seed)
    elif name == "LOF":
        detector = LocalOutlierFactor(n_neighbors=max(1, min(20, n_train - 1)), novelty=True)
    else:
        raise ValueError(f"unknown detector {name!r}: choose one of {list(DETECTORS)}")
    return make_pipeline(StandardScaler(), detector)


def anomaly_scores(detector: str, train: np.ndarray, test: np.ndarray, seed: int = 0) -> np.ndarray:
    """Fit ``detector`` on ``train`` (clean prompts) and score ``test``: higher = more unusual."""
    pipeline = make_detector(detector, seed, len(train)).fit(train)
    return -pipeline.score_samples(test)


class AUROC(NamedTuple):
    """An AUROC (1 = perfect, 0.5 = chance) and the ends of its confidence interval."""

    value: float
    low: float
    high: float


def auroc(
    labels: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> AUROC:
    """AUROC of ``scores`` for ``labels`` (1 = anomaly), with a percentile bootstrap CI.

    Each bootstrap sample redraws the negatives and the positives separately with
    replacement, so that both classes keep their sizes; the point estimate is
    :func:`sklearn.metrics.roc_auc_score` on the scores as given.

    Raises:
        ValueError: Unless both classes are present, or for ``n_boot < 1``.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0 or n_boot < 1:
        raise ValueError("need both classes (labels 0 and 1) and n_boot >= 1")
    rng = np.random.default_rng(seed)
    negs, poss = rng.choice(neg, (n_boot, len(neg))), rng.choice(pos, (n_boot, len(pos)))
    boot = [_mann_whitney_auroc(n, p) for n, p in zip(negs, poss, strict=True)]
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return AUROC(float(roc_auc_score(labels, scores)), float(low), float(high))


def _mann_whitney_auroc(neg: np.ndarray, pos: np.ndarray) -> float:
    """P(positive > negative) + ½ P(tie): what :func:`~sklearn.metrics.roc_auc_score` gives.

    By binary search in the sorted negatives, ``O(n log n)``: fast enough to bootstrap.
    """
    neg = np.sort(neg)
    below, not_above = np.searchsorted(neg, pos, "left"), np.searchsorted(neg, pos, "right")
    return float((below + not_above).sum() / (2 * len(pos) * len(neg)))


# Tables -----------------------------------------------------------------------------
def detection_table(
    features: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    n_train: int,
    detectors: Sequence[str] = DETECTORS,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """AUROC of every task × feature set × detector, as tidy rows.

    Args:
        features: ``features[task][lens] = (clean, injected)``, both ``(prompts, features)``,
            row ``i`` of each from the same prompt.
        n_train: The first ``n_train`` clean prompts fit the detector; the remaining
            prompts (clean and injected) are scored.
        detectors: Names for :func:`make_detector`.
        n_boot: Bootstrap samples per AUROC.
        seed: Seed of the detectors and the bootstrap.

    Returns:
        One dict per combination: ``task, lens, detector, auroc, low, high``.
    """
    rows = []
    for task, by_lens in features.items():
        for lens, (clean, injected) in by_lens.items():
            _check_split(clean, injected, n_train)
            test = np.concatenate([clean[n_train:], injected[n_train:]])
            labels = np.r_[np.zeros(len(clean) - n_train), np.ones(len(injected) - n_train)]
            for detector in detectors:
                scores = anomaly_scores(detector, clean[:n_train], test, seed)
                a = auroc(labels, scores, n_boot=n_boot, seed=seed)
                rows.append(dict(task=task, lens=lens, detector=detector, auroc=a.value,
                                 low=a.low, high=a.high))
    return rows


def _check_split(clean: np.ndarray, injected: np.ndarray, n_train: int) -> None:
    if not 1 <= n_train < min(len(clean), len(injected)):
        raise ValueError(f"n_train must leave held-out prompts: got {n_train} of "
                         f"{len(clean)} clean and {len(injected)} injected")


def format_table(rows: Sequence[dict], digits: int = 2) -> str:
    """Rows of :func:`detection_table` as text: one line per task and feature set.

    Each cell reads ``auroc [low, high]``; one column per detector.
    """
    detectors = list(dict.fromkeys(r["detector"] for r in rows))
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        cell = f"{r['auroc']:.{digits}f} [{r['low']:.{digits}f}, {r['high']:.{digits}f}]"
        cells.setdefault((r["task"], r["lens"]), {})[r["detector"]] = cell
    header = ["task", "features", *detectors]
    lines = [[task, lens, *(c.get(d, "") for d in detectors)] for (task, lens), c in cells.items()]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=True)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
                     for line in [header, *lines])
