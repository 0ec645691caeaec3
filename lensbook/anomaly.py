"""Detect unusual prompts from their trajectories with unsupervised detectors (paper Table 1).

Each prompt becomes one feature vector: per-layer statistics of a lens (entropy,
KL to the output, top-1 probability) at its last positions, flattened over layers.
A detector from scikit-learn (isolation forest, local outlier factor) is fitted on
clean prompts only and scores held-out clean and injected prompts; the AUROC of
those scores says how well the trajectories separate the two, with a bootstrap
confidence interval. The *final layer* baseline sees only the model's output
distribution: its top log-probabilities and entropy.

Example:
    >>> feats = lens_features(trajs, positions=2)  # doctest: +SKIP
    >>> feats.shape  # (prompts, (layers + 1) * positions * statistics)  # doctest: +SKIP
    >>> rows = detection_table({"len": {"tuned lens": (clean, injected)}}, 40)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import PreTrainedModel

from lensbook import metrics
from lensbook.lenses import LogitLens
from lensbook.statistics import get_statistic
from lensbook.tokens import (
    cached_vocabulary,
    check_lengths,
    encode_prompts,
    is_byte_level,
    pad_right,
)
from lensbook.trajectory import NO_TARGET, Trajectory, context_length

LENS_STATISTICS = ("entropy", "kl", "max_probability")
BASELINE = "final layer"  # name of the output-only feature set in tables and figures
DETECTORS = ("isolation forest", "LOF")


# Features ---------------------------------------------------------------------------
def lens_features(
    trajs: Sequence[Trajectory], positions: int = 1, statistics: Sequence[str] = LENS_STATISTICS
) -> np.ndarray:
    """Per-layer statistics at the last ``positions`` tokens, flattened per prompt.

    Args:
        trajs: Trajectories of the prompts (all positions, or :func:`tail_trajectories`).
        positions: How many of the last positions to use.
        statistics: Names in :data:`lensbook.statistics.STATISTICS` that are defined at
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


@torch.inference_mode()
def tail_trajectories(
    model: PreTrainedModel,
    tokenizer,
    lenses: Mapping[str, LogitLens],
    prompts: Sequence[str],
    positions: int = 1,
) -> dict[str, list[Trajectory]]:
    """Like :func:`lensbook.trajectory.trajectories_by_lens`, cut to the last ``positions``.

    One forward pass for all prompts and lenses, as there; but only each prompt's last
    ``positions`` hidden states are decoded, which is all that detection needs and far
    cheaper than decoding every position into the vocabulary.

    Returns:
        For each lens name, one :class:`Trajectory` per prompt, ``positions`` columns each.

    Raises:
        ValueError: For an empty prompt, one longer than the model's context, or one
            shorter than ``positions`` tokens.
    """
    seqs = encode_prompts(tokenizer, prompts)
    check_lengths(seqs, context_length(model))
    if positions < 1 or min(len(s) for s in seqs) < positions:
        raise ValueError(f"positions must be between 1 and the shortest prompt, got {positions}")
    ids, mask = pad_right(seqs, getattr(tokenizer, "pad_token_id", None) or 0)
    out = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                output_hidden_states=True)
    # Right padding: prompt b's last tokens sit at columns len_b - positions .. len_b - 1.
    cols = mask.sum(1, keepdim=True) - positions + torch.arange(positions)
    at = (torch.arange(len(seqs))[:, None].to(model.device), cols.to(model.device))
    hidden = [h[at] for h in out.hidden_states]  # each (prompts, positions, d)
    vocab = cached_vocabulary(tokenizer, out.logits.shape[-1])
    tails = [_tail(seq, positions) for seq in seqs]
    return {name: _trajectories(lens.decode_all(hidden), out.logits[at], tails, vocab,
                                name or lens.label)
            for name, lens in lenses.items()}


def _tail(seq: Sequence[int], positions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and next-token targets of the last ``positions`` tokens."""
    ids = torch.tensor(list(seq))
    targets = torch.cat([ids[1:], torch.tensor([NO_TARGET])])
    return ids[-positions:], targets[-positions:]


def _trajectories(
    layer_logits: torch.Tensor,
    output_logits: torch.Tensor,
    tails: Sequence[tuple[torch.Tensor, torch.Tensor]],
    vocab: Sequence[str],
    label: str,
) -> list[Trajectory]:
    """``(L, prompts, positions, vocab)`` lens logits and the output's to trajectories."""
    logits = torch.cat([layer_logits.to(output_logits.dtype), output_logits[None]])
    log_probs = logits.float().log_softmax(-1).cpu()
    byte_level = is_byte_level(vocab)
    return [Trajectory(log_probs[:, b].clone(), ids, targets, [vocab[i] for i in ids.tolist()],
                       vocab, label, byte_level)
            for b, (ids, targets) in enumerate(tails)]


def prompt_features(
    model: PreTrainedModel,
    tokenizer,
    lenses: Mapping[str, LogitLens],
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
        by_lens = tail_trajectories(model, tokenizer, lenses, batch, positions)
        for name, trajs in by_lens.items():
            parts[name].append(lens_features(trajs, positions, statistics))
        parts[BASELINE].append(output_features(next(iter(by_lens.values())), positions))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


# Detectors and AUROC ----------------------------------------------------------------
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
