"""Where a training step's time goes: its phases, and the passes over one vocabulary tile.

Part 1 trains a tuned lens on a random-weight model of a benchmark shape (as
``step_time.py``, beside this script; defaults, one thread) and adds up the wall time of
each phase over the steps after the first: the base model's forward, the model's output
distribution on each token block (``target``), the lens's KL and gradient over the
vocabulary tiles, and the rest (translators and final norm through autograd, optimiser).

Part 2 times, on one tile of the lens's default size (float32 logits of 256 rows), each
operation of the tile loop in ``KLObjective._softmax_stats`` against the two bf16 matmuls
of the tile; with ``--compile`` also the element-wise passes fused by ``torch.compile``
(it needs a C++ compiler, and compiles for about half a minute).

Run: ``.venv/bin/python benchmarks/step_profile.py --case gpt2-small [--compile]``.
"""

from __future__ import annotations

import argparse
import collections
import functools
import time

import torch
from efficiency import SHAPES  # beside this script
from step_time import training_run

from lensbook.training import loop, objective


def _timed(totals: collections.Counter, name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - start
    return wrapper


def phases(case: str, steps: int) -> dict[str, float]:
    """ms per training token of each phase, over the steps after the first."""
    totals: collections.Counter = collections.Counter()
    kl = objective.KLObjective
    patched = {(loop, "hidden_states"): "base forward", (kl, "target"): "target",
               (kl, "_kl_and_grad"): "lens KL and gradient", (loop._Run, "step"): "step"}
    originals = {key: getattr(*key) for key in patched}
    for (owner, attr), name in patched.items():
        setattr(owner, attr, _timed(totals, name, originals[(owner, attr)]))
    try:
        model, ids, config = training_run(case, steps)
        loop.train_lens(model, ids, config, on_step=lambda s, _: totals.clear() if s == 1 else 0)
    finally:
        for (owner, attr), fn in originals.items():
            setattr(owner, attr, fn)
    per_token = {k: v / ((steps - 1) * config.tokens_per_step) * 1e3 for k, v in totals.items()}
    per_token["rest"] = per_token["step"] - sum(
        per_token[k] for k in ("base forward", "target", "lens KL and gradient"))
    return per_token


def _best_us(fn, repeats: int = 50) -> float:
    fn()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        runs.append((time.perf_counter() - start) / repeats * 1e6)
    return min(runs)


def _passes(z_bf16: torch.Tensor, m: torch.Tensor):
    """The tile loop's element-wise work on one tile (as in ``_softmax_stats``)."""
    z = z_bf16.float()
    m_new = torch.maximum(m, z.amax(-1, keepdim=True))
    rescale = (m - m_new).exp()
    e = (z - m_new).exp()
    return m_new, rescale, e.sum(-1, keepdim=True), e.to(torch.bfloat16)


def tile_ops(d: int, vocab: int, compile_: bool) -> dict[str, float]:
    """µs per operation on one default-size tile of 256 rows."""
    rows = 256
    columns = objective.vocab_tile(torch.device("cpu"), rows, vocab)
    x = torch.randn(rows, d).to(torch.bfloat16)
    w = torch.randn(columns, d).mul(0.05).to(torch.bfloat16)
    z_bf16 = x @ w.T
    z = z_bf16.float()
    m = z.amax(-1, keepdim=True)
    e = (z - m).exp()
    e_bf16 = e.to(torch.bfloat16)
    ops = {
        "matmul x @ W_tile.T": lambda: x @ w.T,
        "matmul q @ W_tile": lambda: e_bf16 @ w,
        "cast logits to float32": lambda: z_bf16.float(),
        "max": lambda: z.amax(-1, keepdim=True),
        "subtract max": lambda: z - m,
        "exp": lambda: torch.exp(z),
        "sum": lambda: e.sum(-1, keepdim=True),
        "cast q to bf16": lambda: e.to(torch.bfloat16),
        "all element-wise passes": lambda: _passes(z_bf16, m),
    }
    if compile_:
        fused = torch.compile(_passes, dynamic=False)
        ops["all element-wise passes, torch.compile"] = lambda: fused(z_bf16, m)
    print(f"one tile: {rows} rows x {columns} columns of the vocabulary")
    return {name: _best_us(fn) for name, fn in ops.items()}


def main() -> None:
    """Print both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(SHAPES), default="gpt2-small")
    parser.add_argument("--steps", type=int, default=4, help="steps (the first is not timed)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    torch.set_num_threads(1)
    times = phases(args.case, args.steps)
    for name, ms in times.items():
        print(f"{name:24s} {ms:7.2f} ms/token  {ms / times['step']:5.0%}")
    _, d, vocab, _ = SHAPES[args.case]
    for name, us in tile_ops(d, vocab, args.compile).items():
        print(f"{name:40s} {us:8.1f} us")


if __name__ == "__main__":
    main()
