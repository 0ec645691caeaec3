"""Stimulus–response alignment (the paper's Fig. 9): does the lens move the way the model does?

Perturb the residual stream after ``ℓ`` blocks at one position and look at two changes
of a distribution over the vocabulary: the *stimulus*, how the lens's prediction at
layer ``ℓ`` moves, and the *response*, how the model's output at that position moves
once the remaining blocks have run. Each change is a vector of the simplex's Aitchison
geometry, ``log q' - log q`` up to a constant (the "perturbation" ``q' ⊖ q``), and the
alignment is their Aitchison cosine (:func:`lensbook.analysis.metrics.aitchison_similarity`):
1 when the lens foresees the direction in which the model's output moves. The paper
finds the tuned lens better aligned than the logit lens at every layer of Pythia-160M.

Choices, after the reference implementation (its ``estimate_effects``): the perturbation
is a *resample ablation* of block ``ℓ - 1``'s update: at the perturbed position,
``h_ℓ = h_{ℓ-1} + Δ_{ℓ-1}`` becomes ``h_{ℓ-1} + Δ'_{ℓ-1}``, where ``Δ'`` is the update
of another sequence of the batch at the same position (a derangement: never its own);
the Aitchison inner product is weighted by the mean of the model's clean and perturbed
output distributions, so that tokens the model gives no probability to do not dominate.
Changed: the reference perturbs every position in turn using a key-value cache; here the
perturbed position is the *last* one of a random-length prefix of each batch, which gives
the same quantity (no later position exists to carry the perturbation) with one plain
forward pass per batch and layer and works on any architecture. Layers are ``1 .. L``:
layer ``L`` is the last block's output, which the model's head reads, so both lenses
*are* the model there and the alignment is 1 (a check of the whole pipeline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook.analysis.causal_basis import decoder
from lensbook.analysis.metrics import aitchison_similarity, kl_divergence
from lensbook.core.lens import Lens
from lensbook.core.model import num_layers
from lensbook.core.stream import editing_stream


def derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of ``0 .. n-1`` without fixed points (``n ≥ 2``)."""
    if n < 2:
        raise ValueError("resampling needs at least 2 sequences per batch")
    while True:  # about e tries on average
        perm = torch.randperm(n, generator=generator)
        if not (perm == torch.arange(n)).any():
            return perm


def _last_logits(model: PreTrainedModel, ids: torch.Tensor) -> torch.Tensor:
    """The model's log-probabilities at the last position, ``(batch, vocab)``, float32."""
    return model(input_ids=ids, logits_to_keep=1).logits[:, -1].float().log_softmax(-1)


@torch.no_grad()
def _perturbed(model: PreTrainedModel, ids: torch.Tensor, layer: int,
               perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Resample block ``layer - 1``'s update at the last position: ``(h, h', log p')``."""
    seen: dict[str, torch.Tensor] = {}

    def swap(h: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        update = h[:, -1] - previous[:, -1]
        h = h.clone()
        seen["clean"] = h[:, -1].clone()
        h[:, -1] = previous[:, -1] + update[perm.to(h.device)]
        seen["treated"] = h[:, -1]
        return h

    with editing_stream(model, layer, swap):
        log_p = _last_logits(model, ids)
    return seen["clean"], seen["treated"], log_p


@torch.no_grad()
def stimulus_response(
    model: PreTrainedModel,
    lenses: Mapping[str, Lens],
    input_ids: torch.Tensor,
    *,
    layers: Sequence[int] | None = None,
    batch_size: int = 8,
    seed: int = 0,
) -> pd.DataFrame:
    """Aitchison alignment of each lens's stimulus with the model's response, per sample.

    Args:
        model: The causal LM.
        lenses: Name -> lens (all read the same perturbed forward passes).
        input_ids: ``(sequences, seq)``; each batch is cut to a random prefix length
            ``2 .. seq`` and perturbed at its last position.
        layers: Stream layers to perturb, ``1 .. L``; all of them by default.
        batch_size: Sequences per forward pass, at least 2 (donors come from the batch;
            a last batch of one sequence is left out).
        seed: For the prefix lengths and the donors.

    Returns:
        One row per (lens, layer, sequence): ``lens, layer, sequence, alignment``
        (Aitchison similarity), ``stimulus`` and ``response`` (KL of the lens's and the
        model's prediction from clean to perturbed, nats).
    """
    layers = list(range(1, num_layers(model) + 1)) if layers is None else list(layers)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for first in range(0, len(input_ids), batch_size):
        batch = input_ids[first:first + batch_size]
        if len(batch) < 2:
            break  # a last lone sequence has no donor
        length = int(torch.randint(2, batch.shape[1] + 1, (1,), generator=generator))
        ids, perm = batch[:, :length].to(model.device), derangement(len(batch), generator)
        log_p = _last_logits(model, ids)
        for layer in layers:
            h, h_new, log_p_new = _perturbed(model, ids, layer, perm)
            rows += _compare(lenses, layer, h, h_new, log_p, log_p_new, first)
    return pd.DataFrame(rows)


def _compare(lenses, layer, h, h_new, log_p, log_p_new, first) -> list[dict]:
    """Rows of one batch and layer: the alignment of each lens's change with the model's."""
    weight = 0.5 * (log_p.exp() + log_p_new.exp())
    response = log_p_new - log_p
    response_kl = kl_divergence(log_p, log_p_new).cpu()
    rows = []
    for name, lens in lenses.items():
        decode = decoder(lens, layer)
        log_q = decode(h).float().log_softmax(-1)
        log_q_new = decode(h_new).float().log_softmax(-1)
        alignment = aitchison_similarity(log_q_new - log_q, response, weight).cpu()
        stimulus_kl = kl_divergence(log_q, log_q_new).cpu()
        rows += [{"lens": name, "layer": layer, "sequence": first + b,
                  "alignment": alignment[b].item(), "stimulus": stimulus_kl[b].item(),
                  "response": response_kl[b].item()} for b in range(len(h))]
    return rows


def alignment_by_layer(cells: pd.DataFrame) -> pd.DataFrame:
    """Mean alignment per lens and layer with its standard error: columns ``lens`` × layer."""
    grouped = cells.groupby(["layer", "lens"], sort=False)["alignment"]
    return pd.DataFrame({"mean": grouped.mean(), "stderr": grouped.sem()})
