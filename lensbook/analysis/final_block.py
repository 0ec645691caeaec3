"""Lenses that keep the model's last block (the paper's Fig. 4, the "extra-layer" variant).

The logit lens decodes the stream after ``ℓ`` blocks with the model's final norm and
head. Its worst layers are often bad because the *last block* does something the head
relies on (BLOOM-560M: 58 bits/byte at layer 0 without it, 8 with it). The paper's
Fig. 4 therefore also decodes through the last block: the stream (or a tuned lens's
translation of it) goes through block ``L - 1`` before the head,
``unembed(block_{L-1}(translate_ℓ(h_ℓ)))``. Its GPT-Neo curves and Fig. 1 use this
variant too (REFERENCE §7; ``lensbook/paper_data/README.md``).

A block needs more than the stream: attention masks, position ids or embeddings (rotary,
ALiBi), whatever the architecture passes. :func:`capture_last_block` records the last
block's call during one ordinary forward pass (a forward pre-hook with its keyword
arguments) and returns a function that calls the block again with another stream in the
same place, so the variant works on every architecture without knowing its arguments.
At ``ℓ = L - 1`` the logit lens with the final block *is* the model, a built-in check.

:func:`final_block_curves` scores lenses both ways on held-out chunks;
:func:`fit_through_final_block` trains a tuned lens whose translators are followed by
the frozen last block (same objective, optimiser and schedule as :mod:`lensbook.training`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from lensbook.analysis.evaluate import metric_rows
from lensbook.analysis.metrics import kl_divergence
from lensbook.core.block_io import block_input, block_output, with_block_input
from lensbook.core.errors import InputError
from lensbook.core.frozen import frozen
from lensbook.core.lens import Lens
from lensbook.core.model import num_layers
from lensbook.core.parts import find_parts
from lensbook.core.tuned import TunedLens
from lensbook.training.config import TrainConfig
from lensbook.training.data import TokenChunks, bits_per_byte_of, token_ids
from lensbook.training.optim import build_optimizer, build_scheduler

#: The two ways of decoding (the ``variant`` column, the paper data's names).
WITHOUT, WITH = "without final block", "with final block"

#: ``replay(h)``: the last block applied to ``h`` ``(batch, seq, d)`` with the arguments
#: of the captured call; returns the block's output stream (before the final norm).
Replay = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def capture_last_block(model: PreTrainedModel,
                       input_ids: torch.Tensor) -> tuple[list[torch.Tensor], Replay]:
    """One forward pass: the streams before the last block, and a replay of that block.

    Args:
        model: A causal LM.
        input_ids: ``(batch, seq)``.

    Returns:
        ``(streams, replay)``: ``streams[ℓ]`` is the residual stream after ``ℓ`` blocks
        for ``ℓ = 0 .. L``, ``streams[L]`` the last block's output before the final norm
        (what the head reads); ``replay`` as in :data:`Replay`.
    """
    block = find_parts(model).layers[-1]
    call: dict[str, object] = {}
    streams: list[torch.Tensor] = []

    def before(module, args, kwargs):
        call["args"], call["kwargs"] = args, kwargs

    def after(module, args, kwargs, output):
        streams.append(block_output(output))

    handles = [block.register_forward_pre_hook(before, with_kwargs=True),
               block.register_forward_hook(after, with_kwargs=True)]
    try:
        out = model.base_model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                               output_hidden_states=True, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    hidden = list(out.hidden_states[:num_layers(model)])
    if not torch.equal(hidden[-1], block_input(call["args"], call["kwargs"])):
        raise RuntimeError(f"{type(model).__name__}: hidden_states[L-1] is not the last "
                           "block's input, so the final-block variant cannot be read here")

    def replay(h: torch.Tensor) -> torch.Tensor:
        args, kwargs = with_block_input(call["args"], call["kwargs"], h)
        return block_output(block(*args, **kwargs))

    return hidden + streams[-1:], replay


def decode(lens: Lens, layer: int, h: torch.Tensor, replay: Replay | None) -> torch.Tensor:
    """The lens's logits at ``layer``, through the last block when ``replay`` is given."""
    translated = lens.transform_hidden(h, layer)
    return lens.unembed(translated if replay is None else replay(translated))


def final_block_curves(model: PreTrainedModel, lenses: Mapping[str, Lens],
                       data: TokenChunks | torch.Tensor, *, batch_size: int = 1,
                       bits_per_byte_factor: float | None = None) -> pd.DataFrame:
    """Cross-entropy and KL per layer, decoded without and with the model's last block.

    Args:
        model: The causal LM.
        lenses: Name -> lens reading the ``L`` residual layers (no sub-layer lenses).
        data: Held-out chunks; a ``TokenChunks`` also gives the bits-per-byte factor.
        batch_size: Chunks per forward pass; each lens, layer and variant holds one
            ``(batch, seq, vocab)`` float32 tensor at a time.
        bits_per_byte_factor: Overrides the factor from ``data``.

    Returns:
        Columns ``lens, variant, layer, metric, value, unit``: ``metric`` is ``"ce"``
        (against the next token) or ``"kl"`` (from the model's output), per token in
        nats and, with a factor, in bits/byte; lens ``"output"`` at layer ``L`` is the
        model's own cross-entropy.
    """
    _check_lenses(model, lenses)
    ids, factor = token_ids(data), bits_per_byte_of(data, bits_per_byte_factor)
    if ids.shape[1] < 2:
        raise InputError("chunks need at least 2 tokens: one to read, one to predict")
    L, sums, count = num_layers(model), {}, 0
    for batch in ids.split(batch_size):
        batch = batch.to(model.device)
        streams, replay = capture_last_block(model, batch)
        targets = batch[:, 1:]
        with torch.no_grad():
            log_p = _log_probs(next(iter(lenses.values())).unembed(streams[L]))
            _add(sums, ("output", "", L, "ce"), _ce(log_p, targets))
            for name, lens in lenses.items():
                for layer in range(L):
                    for variant, rep in ((WITHOUT, None), (WITH, replay)):
                        log_q = _log_probs(decode(lens, layer, streams[layer], rep))
                        _add(sums, (name, variant, layer, "ce"), _ce(log_q, targets))
                        _add(sums, (name, variant, layer, "kl"),
                             kl_divergence(log_p[:, :-1], log_q[:, :-1]).sum().item())
        count += targets.numel()
    return _frame(sums, count, factor)


def _check_lenses(model: PreTrainedModel, lenses: Mapping[str, Lens]) -> None:
    if not lenses:
        raise InputError("no lenses given: pass e.g. {'logit lens': LogitLens.from_model(model)}")
    for name, lens in lenses.items():
        if lens.sublayers or lens.num_layers != num_layers(model):
            raise InputError(f"lens {name!r} must read the model's {num_layers(model)} "
                             "residual layers (no sub-layer points)")


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), -1)


def _ce(log_q: torch.Tensor, targets: torch.Tensor) -> float:
    return -log_q[:, :-1].gather(-1, targets[..., None]).sum().item()


def _add(sums: dict, key: tuple, value: float) -> None:
    sums[key] = sums.get(key, 0.0) + value


def _frame(sums: dict, count: int, factor: float | None) -> pd.DataFrame:
    rows = [{**row, "variant": variant}
            for (name, variant, layer, metric), total in sums.items()
            for row in metric_rows(name, layer, {metric: total / count}, factor)]
    return pd.DataFrame(rows, columns=["lens", "variant", "layer", "metric", "value", "unit"])


def curves_of(frame: pd.DataFrame, metric: str = "ce",
              unit: str = "bits/byte") -> pd.DataFrame:
    """The lenses' rows of one metric and unit: columns ``lens, variant, layer, value``."""
    rows = frame[(frame["metric"] == metric) & (frame["unit"] == unit)
                 & (frame["lens"] != "output")]
    return rows[["lens", "variant", "layer", "value"]].reset_index(drop=True)


def model_loss_of(frame: pd.DataFrame, unit: str = "bits/byte") -> float:
    """The model's own cross-entropy in ``frame`` (the ``"output"`` row)."""
    rows = frame[(frame["lens"] == "output") & (frame["unit"] == unit)]
    return float(rows["value"].item())


def gap_closed(curves: pd.DataFrame, model_loss: float, lens: str) -> pd.Series:
    """Per layer, the share of ``lens``'s gap to the model that the last block closes.

    ``(without - with) / (without - model_loss)``: 1 when decoding through the last
    block reaches the model's own loss, 0 when it changes nothing.
    """
    table = curves[curves["lens"] == lens].pivot(index="layer", columns="variant",
                                                 values="value")
    return (table[WITHOUT] - table[WITH]) / (table[WITHOUT] - model_loss)


def fit_through_final_block(model: PreTrainedModel, lens: TunedLens,
                            data: TokenChunks | torch.Tensor, config: TrainConfig, *,
                            final_block: bool = True, progress: bool = True) -> list[float]:
    """Train ``lens`` in place to minimise KL(model ‖ lens), decoding through the last block.

    Each step draws ``config.tokens_per_step // seq_len`` chunks (without replacement,
    in an order seeded by ``config.seed``) and sums the per-layer mean KL over the
    ``L`` layers. With ``final_block=False`` the same loop trains an ordinary tuned lens,
    so that the two variants get the same data, optimiser and budget.

    Args:
        model: The causal LM (left unchanged).
        lens: A tuned lens of the model, usually freshly initialised (zeros: the logit lens).
        data: Training chunks ``(n, seq_len)``; at least ``steps × chunks per step``.
        config: ``steps``, ``tokens_per_step``, ``batch_size``, the optimiser and schedule
            (``optimizer``, ``lr``, ``momentum``, ``weight_decay``, ``warmup_steps``,
            ``clip_grad_norm``) and ``seed``.
        final_block: Decode through the model's last block (the paper's variant).
        progress: Show a progress bar with the loss.

    Returns:
        The loss of every step (nats, summed over layers).

    Raises:
        InputError: Too few chunks for the budget.
    """
    ids = token_ids(data)
    per_step = max(1, config.tokens_per_step // ids.shape[1])
    if len(ids) < per_step * config.steps:
        raise InputError(f"{config.steps} steps of {per_step} chunks need "
                         f"{per_step * config.steps} chunks, got {len(ids)}")
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(config.seed))
    params = lens.trainable_parameters()
    optimizer, L = build_optimizer(params, config), num_layers(model)
    scheduler, losses = build_scheduler(optimizer, config), []
    bar = tqdm(total=config.steps, desc=f"tuned lens {WITH if final_block else WITHOUT}",
               unit="step", disable=not progress)
    with frozen(model):
        for step in range(config.steps):
            chosen = ids[order[step * per_step:(step + 1) * per_step]]
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for batch in chosen.split(config.batch_size):
                total += _step_loss(model, lens, batch.to(model.device), L, final_block,
                                    weight=len(batch) / len(chosen))
            if config.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, config.clip_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(total)
            bar.update()
            bar.set_postfix(loss=f"{total:.3f}")
    bar.close()
    return losses


def _step_loss(model, lens, batch, L, final_block, weight) -> float:
    """Back-propagate one micro-batch's weighted loss; return its weighted value."""
    streams, replay = capture_last_block(model, batch)
    log_p = _log_probs(lens.unembed(streams[L])).detach()
    total = 0.0
    for layer in range(L):
        log_q = _log_probs(decode(lens, layer, streams[layer], replay if final_block else None))
        loss = kl_divergence(log_p, log_q).mean() * weight
        loss.backward()
        total += loss.item()
    return total


__all__ = ["WITH", "WITHOUT", "capture_last_block", "curves_of", "decode",
           "final_block_curves", "fit_through_final_block", "gap_closed", "model_loss_of"]
