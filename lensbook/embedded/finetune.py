"""Fine-tune a language model on a slice of text: the base/fine-tune pair of the paper's Fig. 13.

The paper applies a tuned lens trained on LLaMA-13B to Vicuna-13B, a fine-tune of it.
:func:`finetune` makes such a pair from any causal LM in seconds on a CPU: it copies the
model and continues its training with lensbook's own pretraining loop
(:func:`lensbook.embedded.pretrain.train`) on chunks of a *shifted* slice of text, for
example only the English reference manual of the embedded corpus.

Example:
    >>> texts = filter_texts(load_texts("corpus"), "kind", "topic")  # doctest: +SKIP
    >>> chunks = chunk_texts(texts, tokenizer, seq_len=256)  # doctest: +SKIP
    >>> tuned = finetune(model, chunks, steps=40, lr=1e-3)  # doctest: +SKIP
"""

from __future__ import annotations

import copy

import torch
from transformers import PreTrainedModel

from lensbook.embedded.pretrain import PretrainConfig, train
from lensbook.training.data import TokenChunks, token_ids


def finetune(
    model: PreTrainedModel,
    data: TokenChunks | torch.Tensor,
    *,
    steps: int = 40,
    lr: float = 1e-3,
    seed: int = 0,
    batch_size: int = 4,
    freeze_embeddings: bool = False,
) -> PreTrainedModel:
    """Return a fine-tuned copy of ``model``; ``model`` itself is left untouched.

    AdamW with a short linear warm-up (a tenth of the steps) and a cosine decay to a
    tenth of ``lr``, no weight decay (only the data moves the weights), gradient
    clipping at 1. The same ``seed`` gives the same weights: it fixes the order of the
    chunks and any dropout, without changing the caller's random state.

    Args:
        model: The base model (any causal LM of ``transformers``).
        data: Training chunks ``(n_chunks, seq_len)``; at least ``batch_size`` of them.
        steps: Optimiser steps.
        lr: Peak learning rate.
        seed: Seed of the chunk order and of dropout.
        batch_size: Chunks per step.
        freeze_embeddings: Keep the input embedding and the output head as they are and
            train only the blocks and norms. In a small model they are most of the
            weights (Pythia-70M: 51M of 70M), so this cuts the optimiser's memory about
            threefold: what lets the fine-tune fit a 2 GB Binder session.

    Returns:
        The fine-tuned copy, in ``eval()`` mode, on the same device as ``model``.

    Raises:
        ValueError: Fewer chunks than ``batch_size``, or ``steps < 1``.
    """
    ids = token_ids(data).to(model.device)
    if ids.shape[0] < batch_size or steps < 1:
        raise ValueError(f"fine-tuning needs steps >= 1 and at least batch_size={batch_size} "
                         f"chunks, got steps={steps} and {ids.shape[0]} chunks")
    cfg = PretrainConfig(steps=steps, lr=lr, seed=seed, batch_size=batch_size,
                         warmup_steps=max(1, steps // 10), weight_decay=0.0, eval_chunks=1)
    tuned = copy.deepcopy(model)
    if freeze_embeddings:
        for module in (tuned.get_input_embeddings(), tuned.get_output_embeddings()):
            module.requires_grad_(False)
    cuda = [model.device.index or 0] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        train(tuned, ids, ids, cfg, desc="fine-tune")
    return tuned.eval()
