"""How the residual stream drifts with depth: hidden-state covariances across layers (Fig. 6).

The paper compares the covariance matrices of ``h_l`` at different layers: if they
change smoothly with depth, translators of nearby layers should transfer to each
other (Fig. 7), and the two measurements should be rank-correlated.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from lensbook.core.model import hidden_states, num_layers, read, residual_points


@torch.inference_mode()
def layer_covariances(
    model: PreTrainedModel, ids: torch.Tensor, batch_size: int = 8
) -> torch.Tensor:
    """Covariance of every layer's residual stream over all tokens: ``(L, d, d)``.

    Args:
        model: The causal LM.
        ids: Token chunks ``(n_chunks, seq_len)``.
        batch_size: Chunks per forward pass.

    Returns:
        Float64 covariances of ``hidden_states[0..L-1]`` (the output layer is excluded:
        it is already normalised).
    """
    sums = sq = None
    count = 0
    points = residual_points(num_layers(model))
    for batch in ids.split(batch_size):
        hidden = hidden_states(model, batch.to(model.device))
        hs = torch.stack([read(hidden, p) for p in points]).double().cpu()
        hs = hs.reshape(hs.shape[0], -1, hs.shape[-1])  # (L, tokens, d)
        sums = hs.sum(1) if sums is None else sums + hs.sum(1)
        outer = hs.transpose(1, 2) @ hs
        sq = outer if sq is None else sq + outer
        count += hs.shape[1]
    mean = sums / count
    return sq / count - mean[:, :, None] * mean[:, None, :]


def covariance_similarity(covs: torch.Tensor, drop_outliers: int = 0) -> torch.Tensor:
    """Cosine similarity between layers' covariance matrices: ``(L, d, d) -> (L, L)``.

    Args:
        covs: Covariances from :func:`layer_covariances`.
        drop_outliers: Remove this many dimensions with the largest variance (averaged
            over layers) first; the paper drops 2 outlier dimensions of Pythia-12B.
    """
    if drop_outliers:
        keep = covs.diagonal(dim1=1, dim2=2).mean(0).argsort()[: covs.shape[-1] - drop_outliers]
        covs = covs[:, keep][:, :, keep]
    flat = covs.flatten(1)
    flat = flat / flat.norm(dim=1, keepdim=True)
    return flat @ flat.T
