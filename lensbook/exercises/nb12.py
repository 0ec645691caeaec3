"""Checks for notebook 12 (faithfulness): Spearman's ρ, a mean ablation, wrong-way moves."""

from __future__ import annotations

import pandas as pd
import torch

from lensbook.analysis.causal_basis import CausalBasis, mean_ablate
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require


@exercise("Exercise 1")
def check_spearman(rho_tuned: object, influence: pd.DataFrame) -> str:
    """``rho_tuned``: Spearman's ρ between the tuned lens's lens and model influences."""
    rows = influence[influence.lens == "tuned lens"]
    lens, model = rows["lens_influence"], rows["model_influence"]
    value = inv.a_float(rho_tuned, "rho_tuned")
    require(-1 <= value <= 1, f"a correlation lies between -1 and 1, got {value:.4g}")
    pearson = lens.corr(model)
    expected = lens.rank().corr(model.rank())
    if abs(value - expected) > 1e-6 and abs(value - pearson) <= 1e-6:
        require(False, f"{value:.4f} is Pearson's r of the raw influences; Spearman's ρ is "
                "Pearson's r of their *ranks* (`.rank()` each column first), which only asks "
                "whether the two orders agree, not whether the values lie on a line")
    inv.close(value, expected, "rho_tuned", "Pearson's r of the ranks of the tuned lens's "
              "`lens_influence` and `model_influence` columns", tol=1e-6)
    # No numbers in the message: ρ moves with the CPU's kernels (the notebook says why).
    return ("Pearson's r of the ranks; compare it with `rho` above. Influences span orders "
            "of magnitude, so a few large ones would dominate Pearson's r of the raw values "
            "but not ρ")


@exercise("Exercise 2")
def check_mean_ablation(ablated: object, h: torch.Tensor, basis: CausalBasis) -> str:
    """``ablated``: ``h`` with the basis's first direction set to the mean's component."""
    require(isinstance(ablated, torch.Tensor), f"ablated must be a tensor, got "
            f"{inv.found(ablated)}")
    require(ablated.shape == h.shape, f"ablated must have h's shape {tuple(h.shape)}, got "
            f"{tuple(ablated.shape)}")
    v, mean = basis.vectors[0].to(h.dtype), basis.mean.to(h.dtype)
    along, target = ablated @ v, (mean @ v).expand(len(h))
    scale = h.abs().max().item()
    require(torch.allclose(along, target, atol=1e-4 * scale),
            "the component along v (`ablated @ v`) must equal the mean's (`mean @ v`) at "
            f"every token; at token {int((along - target).abs().argmax())} it is "
            f"{along[(along - target).abs().argmax()].item():.4g}, the mean's is "
            f"{target[0].item():.4g}")
    rest_before, rest_after = h - (h @ v)[:, None] * v, ablated - along[:, None] * v
    require(torch.allclose(rest_before, rest_after, atol=1e-4 * scale),
            "the part of h orthogonal to v must not change: ablating one direction leaves "
            "every other direction of the stream alone")
    require(torch.allclose(ablated, mean_ablate(h, v, mean), atol=1e-4 * scale),
            "ablated differs from `causal_basis.mean_ablate(h, v, mean)`")
    return ("h + (μ - h)·v v: only the coordinate along v moves, to the mean's; "
            "`causal_basis.mean_ablate` does this for several directions at once")


@exercise("Exercise 3")
def check_wrong_way(wrong_way: object, cells: pd.DataFrame) -> str:
    """``wrong_way``: per lens, the share of perturbations below the head with alignment < 0."""
    below = cells[cells.layer < cells.layer.max()]
    expected = below.assign(negative=below.alignment < 0).groupby("lens")["negative"].mean()
    wrong_way = inv.a_series(wrong_way, "wrong_way", expected.index)
    require(wrong_way.between(0, 1).all(), "shares lie between 0 and 1, got "
            f"{wrong_way.round(4).to_dict()}")
    inv.close(wrong_way, expected, "wrong_way", "per lens, the mean of `alignment < 0` over "
              "the rows of `cells` with layer below the last (at the last layer both lenses "
              "are the model)")
    # Which lens is higher can move with the CPU's kernels when both shares are small.
    return ("one share per lens: a lens can be well aligned on average and still move "
            "against the model for some perturbations")
