"""Few-shot accuracy layer by layer, with true and with false demonstrations (paper Fig. 11).

The paper (after Halawi et al., "Overthinking the truth") reads a few-shot
classification prompt through a lens at the query's last token and asks, layer by layer,
which label the lens ranks highest among the task's labels. With *true* demonstrations
accuracy rises towards the output; with *false* ones (every demonstration's label
replaced by another), it peaks in the middle of the network and falls back towards
chance at the output: late layers "overthink" and copy the misleading labels.

A task is a :class:`lensbook.analysis.injection.Task` whose pool has a small set of
labels; :data:`SENTIMENT` is one an online model can do, the tasks of
:mod:`lensbook.analysis.injection` are ones the embedded model has seen.

Example:
    >>> prompts = fewshot_prompts("sentiment", n=2, false_demos=True, seed=0)
    >>> prompts[0].answer in {"positive", "negative"}
    True
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lensbook.analysis.injection import TASKS, Task
from lensbook.core.lens import Lens
from lensbook.core.names import lookup
from lensbook.core.run import trajectories_from_ids

_POSITIVE = ("a joy from start to finish", "warm, funny and wise", "the best film of the year",
             "beautifully acted and shot", "a delight", "moving and honest",
             "I loved every minute", "smart, tender and surprising", "a triumph",
             "great fun for the whole family", "gorgeous and heartfelt", "simply wonderful")
_NEGATIVE = ("a dull mess", "boring and far too long", "the worst film of the year",
             "badly acted and badly shot", "a chore", "shallow and dishonest",
             "I hated every minute", "clumsy, cold and predictable", "a disaster",
             "no fun for anyone", "ugly and empty", "simply awful")

#: Movie-review sentiment, two labels: a task small online models do from a few shots.
SENTIMENT = Task("sentiment", "sentiment of a short review", "Review: {x}\nSentiment: {y}\n",
                 tuple((x, "positive") for x in _POSITIVE) +
                 tuple((x, "negative") for x in _NEGATIVE))

FEWSHOT_TASKS: dict[str, Task] = {"sentiment": SENTIMENT, **TASKS}


@dataclass(frozen=True)
class FewShotPrompt:
    """Demonstrations and a query; ``answer`` is the query's true label."""

    text: str
    answer: str
    false_demos: bool


def get_fewshot_task(task: str | Task) -> Task:
    """Look up a task by name in :data:`FEWSHOT_TASKS` (or pass one through)."""
    return task if isinstance(task, Task) else lookup(FEWSHOT_TASKS, task, "few-shot task")


def labels_of(task: Task) -> list[str]:
    """The task's distinct labels, in the order of its pool."""
    return list(dict.fromkeys(y for _, y in task.pairs))


def fewshot_prompts(task: str | Task, n: int, *, false_demos: bool, shots: int = 4,
                    seed: int = 0) -> list[FewShotPrompt]:
    """``n`` few-shot prompts; the same for the same ``seed`` whatever ``false_demos`` is.

    Args:
        task: A name in :data:`FEWSHOT_TASKS` or a :class:`Task`.
        n: How many prompts (at least 1).
        false_demos: Give every demonstration a label drawn from the task's *other*
            labels (the query's answer stays true).
        shots: Demonstrations per prompt (at least 1).
        seed: Seed of the draw; true and false prompts of one seed share demonstrations
            and queries, so they differ only in the demonstrations' labels.

    Raises:
        ValueError: ``n`` or ``shots`` below 1, more shots than the pool allows, or a
            task with a single label.
    """
    task = get_fewshot_task(task)
    labels = labels_of(task)
    if n < 1 or shots < 1:
        raise ValueError(f"need n >= 1 and shots >= 1, got n={n}, shots={shots}")
    if len(labels) < 2 or shots + 1 > len(task.pairs):
        raise ValueError(f"task {task.name!r} has {len(labels)} labels and {len(task.pairs)} "
                         f"items: it needs 2 labels and more items than shots ({shots})")
    rng = random.Random(f"fewshot/{task.name}/{seed}")
    prompts = []
    for _ in range(n):
        *demos, (x, y) = rng.sample(task.pairs, shots + 1)
        # Drawn for true prompts too, so that both kinds consume the same random stream.
        wrong = [rng.choice([label for label in labels if label != d]) for _, d in demos]
        shown = wrong if false_demos else [d for _, d in demos]
        context = "".join(task.demo(dx, dy) for (dx, _), dy in zip(demos, shown, strict=True))
        prompts.append(FewShotPrompt(context + task.query(x), y, false_demos))
    return prompts


def label_token_ids(tokenizer: PreTrainedTokenizerBase, task: Task) -> dict[str, int]:
    """The first token of each label as the model would write it right after a query.

    The label is written as in a demonstration (``"Sentiment: positive"``): its first
    token carries the space the query leaves off (``"Ġpositive"``).

    Raises:
        ValueError: When the tokenizer merges the query's end with a label (its tokens
            would not start where the query ends), or when two labels start with the
            same token, so that one token cannot tell them apart.
    """
    x = task.pairs[0][0]
    query = task.query(x)
    before_label = task.template.split("{y}")[0].format(x=x)  # the query's dropped space too
    prefix = tokenizer(query).input_ids
    ids = {}
    for label in labels_of(task):
        full = tokenizer(before_label + label).input_ids
        if full[:len(prefix)] != prefix:
            raise ValueError(f"the tokenizer merges the end of {task.name!r}'s query with "
                             f"the label {label!r}: its first token is not well defined")
        ids[label] = full[len(prefix)]
    if len(set(ids.values())) < len(ids):
        raise ValueError(f"two labels of {task.name!r} start with the same token: {ids}")
    return ids


def accuracy_by_layer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                      lenses: Mapping[str, Lens], task: str | Task,
                      prompts: Sequence[FewShotPrompt], batch_size: int = 4) -> pd.DataFrame:
    """Share of prompts whose true label each lens ranks first among the labels, per layer.

    Only the labels' first tokens compete (the paper's "calibrated" reading of a
    classification task): a lens that puts most of its mass elsewhere still picks one.

    Args:
        model: The causal LM.
        tokenizer: Its tokenizer.
        lenses: Name -> lens.
        task: The task the prompts were made from (a name or a :class:`Task`).
        prompts: From :func:`fewshot_prompts`, true and false ones mixed.
        batch_size: Prompts per forward pass (the model's own logits cover every
            position: small batches keep a 50k-token vocabulary within 2 GB).

    Returns:
        Columns ``lens, layer, demos, accuracy, chance``; ``demos`` is ``"true"`` or
        ``"false"``, ``layer`` runs to ``L`` (the model's output), ``chance`` is one
        over the number of labels.
    """
    task = get_fewshot_task(task)
    ids = label_token_ids(tokenizer, task)
    label_ids = torch.tensor(list(ids.values()))
    rows = []
    for false_demos in (False, True):
        chosen = [p for p in prompts if p.false_demos == false_demos]
        if not chosen:
            continue
        gold = torch.tensor([list(ids).index(p.answer) for p in chosen])
        hits = {name: 0 for name in lenses}
        for start in range(0, len(chosen), batch_size):
            batch = chosen[start:start + batch_size]
            seqs = [tokenizer(p.text).input_ids for p in batch]
            trajs = trajectories_from_ids(model, lenses, seqs, tokenizer, last_positions=1)
            for name, per_prompt in trajs.items():
                picks = torch.stack([t.log_probs[:, -1, label_ids].argmax(-1)
                                     for t in per_prompt])  # (prompts, layers + 1)
                hits[name] = hits[name] + (picks == gold[start:start + len(batch), None]).sum(0)
        for name, count in hits.items():
            for layer, hit in enumerate(count.tolist()):
                rows.append({"lens": name, "layer": layer,
                             "demos": "false" if false_demos else "true",
                             "accuracy": hit / len(chosen), "chance": 1 / len(ids)})
    return pd.DataFrame(rows)
