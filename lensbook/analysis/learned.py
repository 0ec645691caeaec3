"""When is an example learned? Prediction depth against the training step (paper Table 2).

Baldock et al. (2021) call an example *learned* at the earliest training checkpoint
from which on the model predicts it correctly at every later checkpoint; its
*prediction depth* is the earliest layer from which on a probe's prediction equals the
model's final one. The paper's Table 2 finds that the two agree better (higher Spearman
ρ over examples) when depth is read with the tuned lens than with the logit lens.

Here an example is one next-token prediction of held-out text, and only positions the
final model gets right count: there "equals the final prediction" and "correct" are the
same, and every example is learned at some checkpoint (the last one at the latest).
Both quantities are :func:`lensbook.analysis.statistic.depth_of_top1` of a stack of top-1
ids: over checkpoints (rows in training order) or over layers (the output row last).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import torch
from transformers import PreTrainedModel

from lensbook.analysis.depth import layer_top1
from lensbook.analysis.statistic import depth_of_top1
from lensbook.core.errors import InputError
from lensbook.core.lens import Lens
from lensbook.core.memory import release_memory


@torch.inference_mode()
def checkpoint_top1(load: Callable[[int], PreTrainedModel], steps: Sequence[int],
                    input_ids: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Each checkpoint's top-1 next-token id at every position but the last.

    Args:
        load: ``step -> model`` at that checkpoint; one model is held at a time.
        steps: Training steps in increasing order, the final model's last.
        input_ids: ``(n, seq)`` held-out chunks.
        batch_size: Chunks per forward pass.

    Returns:
        ``(len(steps), n * (seq - 1))`` ids, rows in the order of ``steps``.
    """
    if list(steps) != sorted(steps) or len(set(steps)) != len(steps):
        raise InputError(f"steps must be increasing, got {list(steps)}")
    rows = []
    for step in steps:
        model = load(step)
        top1 = [model(input_ids=b.to(model.device)).logits[:, :-1].argmax(-1).cpu()
                for b in input_ids.split(batch_size)]
        rows.append(torch.cat(top1).flatten())
        del model
        release_memory()
    return torch.stack(rows)


def lens_top1(model: PreTrainedModel, lens: Lens, input_ids: torch.Tensor) -> torch.Tensor:
    """The lens's top-1 at every layer and the model's, ``(L + 1, n * (seq - 1))``."""
    rows = [layer_top1(model, lens, seq)[:, :-1] for seq in input_ids]
    return torch.cat(rows, dim=1)


def learned_table(checkpoints: torch.Tensor, lenses: Mapping[str, torch.Tensor],
                  targets: torch.Tensor, steps: Sequence[int]) -> pd.DataFrame:
    """One row per example the final model predicts correctly.

    Args:
        checkpoints: :func:`checkpoint_top1`, ``(C, N)``.
        lenses: Name -> :func:`lens_top1` of the final model, ``(L + 1, N)``.
        targets: ``(N,)`` the true next tokens.
        steps: The checkpoints' training steps.

    Returns:
        Columns ``position``, ``learned`` (the step at which the example is learned),
        ``learned_index`` (its checkpoint's index) and one prediction-depth column per
        lens (layers, 0 .. L).

    Raises:
        ValueError: When the last checkpoint is not the model the lenses read (their
            top-1 predictions differ at more than 0.1% of positions).
    """
    final = checkpoints[-1]
    for name, top1 in lenses.items():
        if (top1[-1] != final).float().mean() > 1e-3:
            raise ValueError(f"{name}: the last checkpoint's predictions are not those of the "
                             "model the lens reads; the final model must be the last checkpoint")
    # Two forward passes may break an exact tie in the logits differently: the final
    # predictions are the checkpoint pass's, for the lenses' output row too.
    lenses = {name: torch.cat([top1[:-1], final[None]]) for name, top1 in lenses.items()}
    right = checkpoints[-1] == targets
    index = depth_of_top1(checkpoints[:, right])
    table = pd.DataFrame({"position": right.nonzero().flatten().numpy(),
                          "learned": torch.tensor(list(steps))[index].numpy(),
                          "learned_index": index.numpy()})
    for name, top1 in lenses.items():
        table[name] = depth_of_top1(top1[:, right]).numpy()
    return table


def depth_vs_learned(table: pd.DataFrame, lenses: Sequence[str]) -> pd.Series:
    """Spearman ρ between each lens's prediction depth and the step learned (index: lens)."""
    return pd.Series({name: table[name].corr(table["learned"], method="spearman")
                      for name in lenses}, name="spearman")
