"""Compare the logit lens and a tuned lens across models (the paper's Figs. 5 and 14).

:func:`compare_models` loads each model with its shipped or published tuned lens,
evaluates both lenses on held-out text cut with that model's own tokenizer, and
stacks the results with a ``model`` column. Bits per byte make models with different
tokenizers comparable. :func:`depth_summary` condenses each curve to a few numbers.

Example:
    >>> frame = compare_models(["lensbook-nano", "lensbook-tiny"], "corpus",
    ...                        max_tokens=8192)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from lensbook.analysis import metrics
from lensbook.analysis.blocks import block_tokens
from lensbook.analysis.evaluate import evaluate_lenses
from lensbook.core.files import load_published
from lensbook.core.lens import LogitLens
from lensbook.core.memory import release_memory
from lensbook.core.model import load_model, run_model
from lensbook.training.data import TokenChunks, token_ids
from lensbook.training.sources import load_chunks

LENSES = ("logit lens", "tuned lens")


def evaluate_model(
    name: str,
    data: str,
    *,
    seq_len: int = 256,
    max_tokens: int = 16384,
    split: str = "test",
    streaming: bool = False,
    device: str = "cpu",
    chunk_mb: float = 256.0,
) -> pd.DataFrame:
    """Evaluate the logit lens and the published tuned lens of one model.

    Args:
        name: Model name (Hub name, local folder or embedded model).
        data: Held-out text source (see :func:`lensbook.training.sources.load_texts`).
        seq_len: Tokens per chunk (at most the model's context).
        max_tokens: Tokens of held-out text.
        split: Split of ``data`` to read.
        streaming: Stream a Hub data set.
        device: Where to run the model.
        chunk_mb: MiB of float32 ``(tokens, vocab)`` buffers the evaluation holds at once
            (see :func:`lensbook.analysis.evaluate.evaluate_lenses`); less for a small
            machine.

    Returns:
        :func:`lensbook.analysis.evaluate.evaluate_lenses`'s table with a ``model`` column.
    """
    model, tokenizer = load_model(name, device=device)
    lenses = {"logit lens": LogitLens.from_model(model), "tuned lens": load_published(model)}
    chunks = load_chunks(data, tokenizer, seq_len, split=split, max_tokens=max_tokens,
                         streaming=streaming)
    frame = evaluate_lenses(model, lenses, chunks, chunk_mb=chunk_mb)
    return frame.assign(model=name, layers=model.config.num_hidden_layers)


def compare_models(names: Sequence[str], data: str, *, progress: bool = True,
                   **kwargs) -> pd.DataFrame:
    """:func:`evaluate_model` for each model, stacked into one tidy table.

    Args:
        names: Models to compare, e.g. a size series or one model per family.
        data: Held-out text source.
        progress: Show a progress bar over models.
        **kwargs: Passed to :func:`evaluate_model`.

    Raises:
        ValueError: If ``names`` is empty.
    """
    if not names:
        raise ValueError("give at least one model to compare")
    frames = []
    for name in tqdm(names, desc="models", disable=not progress):
        release_memory()  # whatever the caller freed, and the last model, before the next
        frames.append(evaluate_model(name, data, **kwargs))
    release_memory()  # the last model's, before the caller's next cell
    return pd.concat(frames, ignore_index=True)


def layer_curves(frame: pd.DataFrame, metric: str = "ce",
                 unit: str = "bits/byte") -> pd.DataFrame:
    """Per-layer values of each (model, lens), with the model's output as the last layer.

    Returns:
        Columns ``model, lens, layer, depth, value``, models in the order of ``frame``;
        ``depth`` is ``layer / layers`` so that models of different depths share an axis
        (1.0 is the output).
    """
    rows = frame[(frame["metric"] == metric) & (frame["unit"] == unit)]
    lenses = rows[rows["lens"].isin(LENSES)]
    output = rows[rows["lens"] == "output"]
    ends = [output.assign(lens=lens) for lens in LENSES]  # each curve ends at the output
    curves = pd.concat([lenses, *ends], ignore_index=True)
    curves = curves.assign(depth=curves["layer"] / curves["layers"])
    order = {model: i for i, model in enumerate(dict.fromkeys(frame["model"]))}
    return curves[["model", "lens", "layer", "depth", "value"]].sort_values(
        ["model", "lens", "layer"], ignore_index=True,
        key=lambda col: col.map(order) if col.name == "model" else col)


def depth_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean, spread and worst value of each (model, lens) curve, output excluded.

    Args:
        curves: :func:`layer_curves`'s table.

    Returns:
        One row per (model, lens) with columns ``mean``, ``std`` and ``max``.
    """
    inner = curves[curves["depth"] < 1.0]
    return inner.groupby(["model", "lens"], sort=False)["value"].agg(["mean", "std", "max"])


def spread_across_models(curves: pd.DataFrame, points: int = 5) -> pd.DataFrame:
    """How far apart the models' curves are at the same relative depth, per lens.

    The paper's Fig. 5 finds the tuned lens's curves "uniformly lower, with less
    variance": across model sizes, its curves lie close together while the logit lens's
    scatter. In the authors' own numbers (``lensbook/paper_data``) the spread between
    sizes at the same depth is 2.6 to 8.5 times smaller for the tuned lens at every
    interior depth of GPT-2 small to XL, and 2.7 to 17 times smaller for OPT 125M to 6.7B
    except next to the output, where both are under 0.12 bits/byte. The embedding layer
    (depth 0) and the output (depth 1) are left out: the first is the logit lens's
    outlier, the second the same for both lenses.

    Args:
        curves: :func:`layer_curves`'s table (columns ``model, lens, depth, value``).
        points: Depths compared, evenly spaced over the interior depths all models have.

    Returns:
        Index ``depth``, one column per lens: max minus min over the models of each
        model's curve, linearly interpolated at that depth.
    """
    inner = curves[(curves["depth"] > 0) & (curves["depth"] < 1)]
    ranges = inner.groupby("model")["depth"].agg(["min", "max"])
    grid = np.linspace(ranges["min"].max(), ranges["max"].min(), points)
    spread = {}
    for lens, rows in inner.groupby("lens", sort=False):
        at = [np.interp(grid, r["depth"], r["value"]) for _, r in rows.groupby("model")]
        spread[lens] = np.ptp(np.stack(at), axis=0)
    return pd.DataFrame(spread, index=pd.Index(grid.round(3), name="depth"))


def output_kl(p_model: PreTrainedModel, q_model: PreTrainedModel,
              data: TokenChunks | torch.Tensor, *, batch_size: int | None = None,
              chunk_mb: float = 256.0) -> float:
    """Mean KL(p ‖ q) between two models' next-token distributions, in nats per token.

    For two models with the same vocabulary, e.g. a fine-tune ``p`` and its base ``q``:
    how far fine-tuning moved the output. Zero iff both predict the same everywhere.

    Args:
        p_model: The model whose distribution is the reference ``p``.
        q_model: The other model.
        data: Chunks ``(n_chunks, seq_len)``; every position counts.
        batch_size: Chunks per forward pass; by default as many as keep the logits and
            their temporaries within ``chunk_mb`` MiB (at least one).
        chunk_mb: The memory bound that sets the default ``batch_size``.
    """
    ids = token_ids(data)
    if batch_size is None:
        vocab = p_model.get_output_embeddings().weight.shape[0]
        batch_size = max(1, block_tokens(vocab, chunk_mb) // ids.shape[1])
    total, count = 0.0, 0
    for batch in ids.split(batch_size):
        logp = torch.log_softmax(run_model(p_model, batch.to(p_model.device))[1].float(), -1)
        logq = torch.log_softmax(run_model(q_model, batch.to(q_model.device))[1].float(), -1)
        total += metrics.kl_divergence(logp, logq.to(logp.device)).sum().item()
        count += batch.numel()
        del logp, logq
    return total / count
