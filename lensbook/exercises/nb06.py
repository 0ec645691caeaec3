"""Checks for notebook 06 (drift and transfer): outliers, the logit lens's penalty, variances."""

from __future__ import annotations

import pandas as pd
import torch

from lensbook.analysis.drift import covariance_similarity
from lensbook.analysis.transfer import NO_TRANSLATOR, transfer_grid
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require


def a_matrix(value: object, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    """``value`` as a float tensor of ``shape``."""
    require(isinstance(value, torch.Tensor), f"{what} must be a torch.Tensor, "
            f"got {inv.found(value)}")
    require(tuple(value.shape) == shape, f"{what} must have shape {shape}, got "
            f"{tuple(value.shape)}")
    return value.double()


@exercise("Exercise 1")
def check_outliers(dropped: object, covs: torch.Tensor, similarity: torch.Tensor,
                   outliers: int = 2) -> str:
    """``dropped``: the similarity matrix without the ``outliers`` highest-variance dimensions."""
    dropped = a_matrix(dropped, "the new similarity matrix", tuple(similarity.shape))
    require(torch.allclose(dropped, dropped.T, atol=1e-6), "a similarity matrix is symmetric: "
            "entry (i, j) compares layers i and j, like (j, i)")
    expected = covariance_similarity(covs, drop_outliers=outliers).double()
    inv.close(dropped, expected, "the new similarity matrix", f"covariance_similarity(covs, "
              f"drop_outliers={outliers})", 1e-5)
    # Which entry moves most can flip with the CPU's kernels when all moves are tiny: not said.
    return f"the similarity matrix without the {outliers} highest-variance dimensions"


@exercise("Exercise 2")
def check_logit_penalty(worse: object, frame: object) -> str:
    """``worse``: per layer ``j ≥ 1``, the logit lens's penalty minus translator ``j-1``'s."""
    frame = inv.a_frame(frame, "the transfer frame", ["translator", "layer", "metric", "value"])
    require((frame.translator == NO_TRANSLATOR).any(), "the transfer frame has no logit-lens "
            f"rows (translator == {NO_TRANSLATOR}): call lensbook.transfer_matrix(..., "
            "no_translator=True)")
    grid, unit = transfer_grid(frame, "penalty")
    layers = [j for j in grid.columns if j >= 1]
    expected = pd.Series({j: grid.loc[NO_TRANSLATOR, j] - grid.loc[j - 1, j] for j in layers})
    worse = inv.a_series(worse, "worse", layers)
    inv.close(worse, expected, "worse", f"penalty of no translator minus penalty of "
              f"translator j - 1, on layer j, in {unit}", 1e-4)
    n = int((expected > 0).sum())
    return f"no translator is worse than the neighbour's at {n} of {len(layers)} layers"


def variance_rho(covs: torch.Tensor, penalty: torch.Tensor) -> float:
    """Spearman correlation of the diagonal-variance correlation with the penalty, off-diagonal."""
    similar = torch.corrcoef(covs.diagonal(dim1=1, dim2=2).double())
    off = ~torch.eye(len(similar), dtype=torch.bool)
    pairs = pd.DataFrame({"s": similar[off].numpy(), "p": penalty[off].double().numpy()})
    return float(pairs.corr(method="spearman").loc["s", "p"])


@exercise("Exercise 3")
def check_variance_rho(rho: object, covs: torch.Tensor, penalty: torch.Tensor) -> str:
    """``rho``: Spearman ρ between the correlation of per-dimension variances and the penalty."""
    rho = inv.a_float(rho, "rho")
    require(-1 <= rho <= 1, f"a rank correlation lies in [-1, 1], got {rho}")
    expected = variance_rho(covs, penalty)
    inv.close(rho, expected, "rho", "Spearman correlation, over off-diagonal pairs (i, j), of "
              "the correlation of layer i's and j's variances with penalty[i, j]", 1e-6)
    sign = "negative" if expected < 0 else "not negative"
    return f"with per-dimension variances instead of whole covariances, ρ is {sign}"
