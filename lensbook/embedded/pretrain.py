"""Pretrain a small language model from scratch on CPU: model, AdamW loop, held-out loss.

Used by ``python -m lensbook.build_default`` to make the embedded default model. It
knows nothing about which corpus it is given; ``build_default`` picks that.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, PreTrainedModel

from lensbook.embedded.families import FAMILIES


@dataclass
class PretrainConfig:
    """Model size and optimisation settings (defaults: the shipped ``lensbook-tiny``)."""

    family: str = "gpt2"  # architecture: "gpt2", "gpt_neo" or "opt" (see FAMILIES)
    vocab_size: int = 4096  # small vocab: the embedding would otherwise dominate 1.7M params
    n_layer: int = 6  # enough layers for a layer-by-layer lens to show something
    n_embd: int = 128  # width that reaches ~7k tokens/s on 2 CPU cores
    n_head: int = 4  # head size 32
    seq_len: int = 256  # context length; also the training chunk length
    batch_size: int = 16  # chunks per step: 4,096 tokens
    steps: int = 3000  # ~12M tokens, ~4 passes over the training split
    minutes: float | None = None  # wall-clock budget: if set, it drives the schedule
    lr: float = 3e-3  # peak; small models tolerate (and need) a high rate
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 100  # linear warmup from 0
    weight_decay: float = 0.1  # on matrices only, not on biases/norms
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_every: int = 250  # steps between held-out checks for the training curve
    eval_chunks: int = 64  # chunks used for those checks (the final eval uses all)
    seed: int = 0
    extra: dict = field(default_factory=dict)  # free-form notes copied to the card


def make_model(cfg: PretrainConfig, eos_id: int) -> PreTrainedModel:
    """Build a randomly initialised causal LM of ``cfg.family`` (no dropout, tied embeddings).

    Raises:
        ValueError: For an unknown family.
    """
    if cfg.family not in FAMILIES:
        raise ValueError(f"unknown family {cfg.family!r}; choose from {sorted(FAMILIES)}")
    config = FAMILIES[cfg.family].make_config(cfg, eos_id)
    torch.manual_seed(cfg.seed)
    return AutoModelForCausalLM.from_config(config)


def lr_at(step: int, cfg: PretrainConfig, elapsed_s: float = 0.0) -> float:
    """Learning rate after ``step`` steps: linear warmup, then cosine decay.

    The decay follows the step count, or the elapsed time when ``cfg.minutes`` is set
    (so a wall-clock budget still ends at the minimum rate on a busy machine).
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.minutes is not None:
        progress = elapsed_s / (60 * cfg.minutes)
    else:
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def _optimizer(model: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.AdamW:
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.dim() >= 2]
    no_decay = [p for p in trained if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


@torch.no_grad()
def mean_loss(model: torch.nn.Module, input_ids: torch.Tensor, batch_size: int = 32) -> float:
    """Mean next-token cross-entropy in nats over all predicted positions.

    Args:
        model: A causal LM returning ``.logits`` of shape ``(batch, seq, vocab)``.
        input_ids: Chunks, shape ``(n, seq)``; positions ``1..seq-1`` are predicted.
        batch_size: Chunks per forward pass.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in input_ids.split(batch_size):
        logits = model(input_ids=batch).logits[:, :-1].float()
        targets = batch[:, 1:]
        total += torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
        ).item()
        count += targets.numel()
    model.train(was_training)
    return total / count


def _batches(n: int, cfg: PretrainConfig) -> Iterable[torch.Tensor]:
    """Endless chunk indices: a fresh seeded permutation for every pass."""
    gen = torch.Generator().manual_seed(cfg.seed)
    while True:
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n - cfg.batch_size + 1, cfg.batch_size):
            yield perm[start:start + cfg.batch_size]


def _should_stop(step: int, start: float, cfg: PretrainConfig) -> bool:
    if cfg.minutes is not None:
        return time.time() - start >= 60 * cfg.minutes
    return step >= cfg.steps


def train(
    model: PreTrainedModel, train_ids: torch.Tensor, eval_ids: torch.Tensor,
    cfg: PretrainConfig, desc: str = "pretrain",
    on_step: Callable[[int, PreTrainedModel], None] | None = None,
) -> list[dict]:
    """Train in place with AdamW; return the curve as a list of logged rows.

    Runs ``cfg.steps`` steps, or until ``cfg.minutes`` have passed when that is set.
    Each row has ``step``, ``train_loss`` (mean over the steps since the last row),
    ``eval_loss`` (on the first ``cfg.eval_chunks`` held-out chunks), ``tokens``
    and ``minutes``. ``desc`` labels the progress bar. ``on_step(step, model)`` is
    called after every optimiser step (``step`` counts from 1), e.g. to keep checkpoints.
    """
    opt = _optimizer(model, cfg)
    model.train()
    curve, running, start, step = [], [], time.time(), 0
    batches = _batches(train_ids.shape[0], cfg)
    bar = tqdm(total=None if cfg.minutes else cfg.steps, desc=desc, unit="step")
    while not _should_stop(step, start, cfg):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg, time.time() - start)
        batch = train_ids[next(batches)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        running.append(loss.item())
        step += 1
        bar.update()
        if on_step is not None:
            on_step(step, model)
        if step % cfg.eval_every == 0 or _should_stop(step, start, cfg):
            curve.append(_log_row(model, step, running, eval_ids, cfg, start))
            running = []
            bar.set_postfix(loss=f"{curve[-1]['train_loss']:.3f}",
                            eval=f"{curve[-1]['eval_loss']:.3f}")
    bar.close()
    model.eval()
    return curve


def _log_row(model, step, running, eval_ids, cfg, start) -> dict:
    return {
        "step": step, "train_loss": sum(running) / len(running),
        "eval_loss": mean_loss(model, eval_ids[: cfg.eval_chunks]),
        "tokens": step * cfg.batch_size * cfg.seq_len,
        "minutes": (time.time() - start) / 60,
    }


def greedy_samples(model, tokenizer, prompts: list[str], new_tokens: int = 40) -> list[str]:
    """Greedy continuations of ``prompts`` (prompt included), decoded to text."""
    out = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")
        gen = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=tokenizer.eos_token_id)
        out.append(tokenizer.decode(gen[0], skip_special_tokens=True))
    return out
