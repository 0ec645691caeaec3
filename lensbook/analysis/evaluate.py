"""Per-layer metrics of lenses on held-out chunks, as a tidy ``pandas.DataFrame``.

For every lens (logit, tuned, bias-only, …) and layer ``l = 0..L-1``:

* ``kl``: KL(p_final ‖ q_l), the tuned lens's training objective;
* ``ce``: cross-entropy of ``q_l`` against the next token (positions with a next token
  inside the chunk);
* ``entropy``: H(q_l);
* ``top1_agreement``: fraction of positions where ``argmax q_l = argmax p_final``;
* ``bias``: the paper's bias (Fig. 3), KL between the output's marginal distribution
  (``p_final`` averaged over all positions) and the lens's marginal.

The model's own output appears as lens ``"output"`` at layer ``L`` (its ``ce`` and
``entropy`` are the baselines). ``kl``, ``ce`` and ``entropy`` are reported in
``nats/token`` and, when the bits-per-byte factor of the text is known, in
``bits/byte``; ``bias`` in ``nats`` and ``bits``. Logits are only ever held for one
block of tokens and one layer (see ``chunk_mb``).

Example:
    >>> frame = evaluate_lenses(model, {"logit lens": LogitLens.from_model(model),
    ...                                 "tuned lens": lens}, chunks)  # doctest: +SKIP
    >>> frame.query("metric == 'kl' and unit == 'nats/token'")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook.analysis import metrics
from lensbook.analysis.blocks import block_tokens, token_blocks
from lensbook.core.errors import InputError
from lensbook.core.guards import check_lens_fits
from lensbook.core.lens import Lens
from lensbook.core.memory import MemoryEstimate, forward_bytes, module_bytes, tensor_bytes
from lensbook.core.model import read
from lensbook.training.data import TokenChunks, bits_per_byte_of, token_ids

COLUMNS = ["lens", "layer", "metric", "value", "unit"]
PER_TOKEN = ("kl", "ce", "entropy")  # reported in nats/token and bits/byte


class _Totals:
    """Running sums of one lens at one layer."""

    def __init__(self, vocab: int, device: torch.device):
        self.sums = dict.fromkeys(("kl", "ce", "entropy", "top1_agreement"), 0.0)
        self.tokens = self.ce_tokens = 0
        self.marginal = torch.zeros(vocab, dtype=torch.float64, device=device)

    def add(self, logq: torch.Tensor, logp: torch.Tensor, targets: torch.Tensor) -> None:
        ce = metrics.cross_entropy(logq, targets)
        valid = targets >= 0
        self.sums["kl"] += metrics.kl_divergence(logp, logq).sum().item()
        self.sums["ce"] += ce[valid].sum().item()
        self.sums["entropy"] += metrics.entropy(logq).sum().item()
        self.sums["top1_agreement"] += (logq.argmax(-1) == logp.argmax(-1)).sum().item()
        self.marginal += logq.exp().sum(0, dtype=torch.float64)
        self.tokens += logq.shape[0]
        self.ce_tokens += int(valid.sum())

    def means(self, final_marginal: torch.Tensor) -> dict[str, float]:
        out = {k: v / self.tokens for k, v in self.sums.items()}
        out["ce"] = self.sums["ce"] / max(1, self.ce_tokens)
        p, q = final_marginal / self.tokens, self.marginal / self.tokens
        out["bias"] = metrics.kl_divergence(p.clamp_min(1e-300).log(),
                                            q.clamp_min(1e-300).log()).item()
        return out


def evaluation_memory(model: PreTrainedModel, lenses: Mapping[str, Lens], seq_len: int, *,
                      batch_size: int = 8, chunk_mb: float = 256.0) -> MemoryEstimate:
    """What :func:`evaluate_lenses` holds at its peak (see :mod:`lensbook.core.memory`).

    The lenses share the model's head; the logits of a block are bounded by ``chunk_mb``;
    each (lens, layer) keeps a float64 marginal over the vocabulary.
    """
    head = next(iter(lenses.values())).unembed
    points = sum(len(lens.read_points()) for lens in lenses.values()) + 1
    own = [p for lens in lenses.values() for p in lens.parameters()]
    return MemoryEstimate("evaluation", {
        "model": module_bytes(model),
        "lenses": tensor_bytes(own) - tensor_bytes(head.parameters()),
        "head copies": 0,
        "forward batch": forward_bytes(model, batch_size * seq_len),
        "logits blocks": int(chunk_mb * 2**20),
        "marginals": points * head.vocab_size * 8,
    })


@torch.inference_mode()
def evaluate_lenses(
    model: PreTrainedModel,
    lenses: Mapping[str, Lens],
    data: TokenChunks | torch.Tensor,
    *,
    batch_size: int = 8,
    chunk_mb: float = 256.0,
    bits_per_byte_factor: float | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Evaluate lenses on token chunks.

    Args:
        model: The base model.
        lenses: Name -> lens, e.g. ``{"logit lens": LogitLens.from_model(model),
            "tuned lens": lens}``; all read the same number of points.
        data: Held-out chunks ``(n_chunks, seq_len)``; a ``TokenChunks`` also gives the
            bits-per-byte factor.
        batch_size: Chunks per forward pass.
        chunk_mb: MiB of float32 ``(tokens, vocab)`` buffers held at once.
        bits_per_byte_factor: Overrides the factor from ``data``.
        progress: Show a progress bar over batches.

    Returns:
        A tidy frame with columns ``lens, layer, metric, value, unit``.
    """
    if not lenses:
        raise InputError("no lenses given: pass e.g. {'logit lens': LogitLens.from_model(model)}")
    for lens in lenses.values():
        check_lens_fits(model, lens)
    factor = bits_per_byte_of(data, bits_per_byte_factor)
    any_lens = next(iter(lenses.values()))
    unembed, points = any_lens.unembed, any_lens.read_points()
    if any(lens.read_points() != points for lens in lenses.values()):
        raise ValueError("the lenses must read the same points of the model to share a table")
    final = _Totals(unembed.vocab_size, unembed.device)
    totals = {(name, layer): _Totals(unembed.vocab_size, unembed.device)
              for name in lenses for layer in range(len(points))}
    blocks = token_blocks(model, token_ids(data), batch_size=batch_size, progress=progress,
                          points=points,
                          block=block_tokens(unembed.vocab_size, chunk_mb), device=unembed.device)
    for hs, targets in blocks:
        logp = torch.log_softmax(unembed.logits_from_normalized(hs[-1]).float(), -1)
        final.add(logp, logp, targets)
        for (name, layer), total in totals.items():
            h = read(hs, points[layer])
            total.add(torch.log_softmax(lenses[name](h, layer).float(), -1), logp, targets)
    return _to_frame(totals, final, len(points), factor)


def _to_frame(totals: dict, final: _Totals, n_layers: int, factor: float | None):
    rows = []
    for (name, layer), total in totals.items():
        rows += metric_rows(name, layer, total.means(final.marginal), factor)
    output = final.means(final.marginal)
    rows += metric_rows("output", n_layers, {k: output[k] for k in ("ce", "entropy")}, factor)
    return pd.DataFrame(rows, columns=COLUMNS)


def metric_rows(name: str, layer: int, means: dict[str, float],
                factor: float | None) -> list[dict]:
    """Long-format rows of one lens at one layer: each metric in each of its units.

    Per-token metrics (:data:`PER_TOKEN`) come in nats/token and, given the
    bits-per-byte ``factor``, in bits/byte; ``"bias"`` in nats and bits; the rest as
    fractions.
    """
    rows = []
    for metric, value in means.items():
        if metric in PER_TOKEN:
            rows.append(dict(lens=name, layer=layer, metric=metric, value=value,
                             unit="nats/token"))
            if factor is not None:
                rows.append(dict(lens=name, layer=layer, metric=metric, value=value * factor,
                                 unit="bits/byte"))
        elif metric == "bias":
            rows.append(dict(lens=name, layer=layer, metric=metric, value=value, unit="nats"))
            rows.append(dict(lens=name, layer=layer, metric=metric,
                             value=value / metrics.LN2, unit="bits"))
        else:
            rows.append(dict(lens=name, layer=layer, metric=metric, value=value,
                             unit="fraction"))
    return rows


def save_metrics(frame: pd.DataFrame, stem: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.json`` (a list of records); return both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, js = stem.with_suffix(".csv"), stem.with_suffix(".json")
    frame.to_csv(csv, index=False)
    frame.to_json(js, orient="records", indent=1)
    return csv, js


def pivot(frame: pd.DataFrame, metric: str = "kl", unit: str = "nats/token") -> pd.DataFrame:
    """One metric as a ``layer x lens`` table (handy for printing and plotting)."""
    chosen = frame[(frame.metric == metric) & (frame.unit == unit)]
    return chosen.pivot(index="layer", columns="lens", values="value")


def unigram_cross_entropy(train_ids: torch.Tensor, test_ids: torch.Tensor,
                          vocab_size: int) -> float:
    """Cross-entropy (nats/token) of a predictor that ignores the context entirely.

    It always predicts the token frequencies of ``train_ids`` (add-one smoothed, so no
    token has probability zero): the loss of "always guess the most frequent tokens",
    a floor that any reader of a model's hidden states should beat. Scored, as ``ce`` in
    :func:`evaluate_lenses`, on the next token of every position of every chunk.

    Args:
        train_ids: Token ids to count, any shape.
        test_ids: Held-out chunks ``(n_chunks, seq_len)``.
        vocab_size: Size of the vocabulary.

    Returns:
        Mean ``-log p(next token)`` over ``test_ids[:, 1:]``.
    """
    counts = torch.bincount(train_ids.flatten(), minlength=vocab_size).double() + 1.0
    logp = (counts / counts.sum()).log()
    return float(-logp[test_ids[:, 1:].flatten()].mean())
