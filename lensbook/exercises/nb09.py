"""Checks for notebook 09 (which lens): fewer prompts, the KL ratio, the official file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook.analysis.evaluate import evaluate_lenses, pivot
from lensbook.core.jacobian import JacobianLens, load_jacobian_artifact
from lensbook.exercises import invariants as inv
from lensbook.exercises.core import exercise, require


@exercise("Exercise 1")
def check_fewer_prompts(lens: object, more_help: object, full: JacobianLens,
                        model: PreTrainedModel, ids: torch.Tensor) -> str:
    """``lens``: a Jacobian lens fit on fewer prompts; ``more_help``: the full one is closer."""
    require(isinstance(lens, JacobianLens), f"expected the JacobianLens that "
            f"JacobianLens.fit returns, got {inv.found(lens)}")
    n, n_full = lens.config.n_prompts, full.config.n_prompts
    require(n < n_full, f"fit on fewer prompts than the notebook's lens ({n_full}), got {n}")
    more_help = inv.a_bool(more_help, "more_help")
    pair = {"fewer": lens, "full": full}  # small buffers: it runs beside a notebook's lenses
    kl = pivot(evaluate_lenses(model, pair, ids, chunk_mb=64), "kl", "nats/token")
    truth = bool(kl["full"].mean() < kl["fewer"].mean())
    require(more_help == truth, f"on these chunks the lens fit on {n_full} prompts is "
            f"{'closer' if truth else 'not closer'} to the output on average, so more_help "
            f"must be {truth}")
    # The two means can be close: which is lower is not printed (it may move with the CPU).
    return f"a Jacobian lens fit on {n} prompts instead of {n_full}, compared on equal chunks"


@exercise("Exercise 2")
def check_largest_ratio(layer: object, kl: pd.DataFrame) -> str:
    """``layer``: where the logit lens's KL divided by the Jacobian lens's is largest."""
    ratio = kl["logit lens"] / kl["Jacobian lens"]
    layer = inv.an_int(layer, "the layer", int(ratio.index.min()), int(ratio.index.max()))
    best = int(ratio.idxmax())
    require(layer == best, f"the ratio at layer {layer} is smaller than at layer {best}")
    return f"layer {best}: there the Jacobian lens improves most on the logit lens"


@exercise("Exercise 3")
def check_artifact(path: object, missing: object, lens: JacobianLens,
                   model: PreTrainedModel) -> str:
    """``path``: the saved official file; ``missing``: the layer it does not store."""
    require(isinstance(path, (str, Path)) and Path(path).is_file(), f"path must name the file "
            f"save_jacobian_artifact wrote, got {inv.found(path)}")
    loaded = load_jacobian_artifact(path, model)
    stored = set(torch.load(path, map_location="cpu", weights_only=True)["J"])
    absent = [layer for layer in range(lens.num_layers) if layer - 1 not in stored]
    missing = inv.an_int(missing, "the missing layer", 0, lens.num_layers - 1)
    require(absent == [missing], f"the file stores block outputs (its layer l is our l + 1); "
            f"our layer {absent[0]} is not among them, not layer {missing}")
    eye = torch.eye(lens.config.d_model)
    require(torch.equal(loaded.J[missing].cpu(), eye), "loaded back, the missing layer "
            "should keep the identity")
    return f"layer {missing}, the embeddings, is not in the file and loads as the identity"
