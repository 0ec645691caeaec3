"""Milliseconds per training token of the lensbook that is imported, and its share of the peak.

Trains a tuned lens on a random-weight model of a benchmark shape (``tiny``: lensbook-tiny's
6 layers, d 128, vocabulary 4,096; ``gpt2-small``; ``pythia-410m``) with the training
defaults (``dtype="auto"``), one thread, and times each step after the first. In the same
process, right after, it measures the single-thread bf16 and fp32 matmul peaks at the
lens's shape (``efficiency.matmul_peak``, beside this script), so the share of the peak is not
skewed by how busy a shared machine was at another time.

It measures whichever ``lensbook`` Python imports, so an interleaved A/B of two commits is::

    git worktree add /tmp/before <commit>
    for i in 1 2 3; do
      PYTHONPATH=/tmp/before .venv/bin/python benchmarks/step_time.py --case gpt2-small
      .venv/bin/python benchmarks/step_time.py --case gpt2-small
    done

Prints one line per run: the commit's folder, the median ms/token over the timed steps
(min-max), tokens/s, and the share of each peak.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import transformers as tf
from efficiency import SHAPES, flop_per_token, matmul_peak  # beside this script

import lensbook
from lensbook.training.config import TrainConfig
from lensbook.training.loop import train_lens

SEQ = 256


def model_of(case: str) -> tf.PreTrainedModel:
    """A random-weight model of the benchmark shape (GPT-2 or GPT-NeoX layout)."""
    layers, d, vocab, _ = SHAPES[case]
    if case == "pythia-410m":
        config = tf.GPTNeoXConfig(num_hidden_layers=layers, hidden_size=d, vocab_size=vocab,
                                  num_attention_heads=16, intermediate_size=4 * d)
        return tf.GPTNeoXForCausalLM(config).eval()
    config = tf.GPT2Config(n_layer=layers, n_embd=d, vocab_size=vocab,
                           n_head=4 if case == "tiny" else 12, bos_token_id=0, eos_token_id=0)
    return tf.GPT2LMHeadModel(config).eval()


def training_run(case: str, steps: int) -> tuple[tf.PreTrainedModel, torch.Tensor, TrainConfig]:
    """The benchmark's model, token chunks and training settings for ``steps`` steps."""
    torch.manual_seed(0)
    model = model_of(case)
    tokens_per_step = 4096 if case == "tiny" else 1024
    n_chunks = steps * tokens_per_step // SEQ
    ids = torch.randint(0, model.config.vocab_size, (n_chunks, SEQ),
                        generator=torch.Generator().manual_seed(1))
    config = TrainConfig(steps=steps, tokens_per_step=tokens_per_step, seq_len=SEQ,
                         batch_size=8 if case == "tiny" else 4, progress=False)
    return model, ids, config


def step_ms_per_token(case: str, steps: int) -> list[float]:
    """ms per training token of each step after the first."""
    model, ids, config = training_run(case, steps)
    marks = []
    train_lens(model, ids, config, on_step=lambda *_: marks.append(time.perf_counter()))
    tokens = config.tokens_per_step
    return [(b - a) / tokens * 1e3 for a, b in zip(marks, marks[1:], strict=False)]


def main() -> None:
    """Time the steps, measure the peaks, print one line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(SHAPES), default="gpt2-small")
    parser.add_argument("--steps", type=int, default=6, help="steps (the first is not timed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    per_token = step_ms_per_token(args.case, args.steps)
    ms = statistics.median(per_token)
    layers, d, vocab, params = SHAPES[args.case]
    achieved = flop_per_token(layers, d, vocab, params) / (ms / 1e3) / 1e9
    shares = ", ".join(
        f"{achieved / matmul_peak(d, vocab, dtype, repeats=3):.0%} of {name} peak"
        for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)))
    print(f"{Path(lensbook.__file__).parents[1].name} {args.case}: {ms:.2f} ms/token "
          f"({min(per_token):.2f}-{max(per_token):.2f}), {1e3 / ms:.0f} tokens/s, "
          f"{achieved:.0f} GFLOP/s: {shares}")


if __name__ == "__main__":
    main()
