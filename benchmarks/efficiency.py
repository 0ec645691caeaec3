"""How close lensbook's training gets to the CPU's matmul peak (issue 18, acceptance).

Counts the floating-point work of one training token, as issue 18 does: for a model of
``L`` layers, width ``d`` and vocabulary ``V``, ``(4L + 4)·d·V`` FLOP in the unembedding
matmuls (each layer's logits and their gradient, plus the final distribution and the
shared cross term) and ``4·L·d²`` in the translators (the issue's ``28·d·V + 4·L·d²`` at
``L = 6``), plus ``2·P`` for the base model's forward (``P`` non-embedding parameters).
Divides by the seconds per token of a benchmark run (``bench_train.py``'s JSON, median
tokens/s of lensbook) and compares with the single-thread matmul peak measured here at the
lens's shape (a block of 256 tokens × ``d`` times ``d × V``), in bf16 and fp32.

The fraction that matters is the one of the dtype the run used: lensbook's default
(``dtype="auto"``) multiplies in bf16 on CPUs with native bf16, so its share of the *fp32*
peak can exceed 100% there without the count being wrong.

Usage (1 thread, a quiet machine)::

    .venv/bin/python benchmarks/efficiency.py benchmarks/results/tiny-cpu-rb4-default.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

SHAPES = {"tiny": (6, 128, 4096, 1.2e6), "gpt2-small": (12, 768, 50257, 85e6),
          "pythia-410m": (24, 1024, 50304, 302e6)}  # L, d, V, non-embedding parameters


def flop_per_token(layers: int, d: int, vocab: int, params: float) -> float:
    """Training FLOP per token (see the module docstring)."""
    return (4 * layers + 4) * d * vocab + 4 * layers * d * d + 2 * params


def matmul_peak(d: int, vocab: int, dtype: torch.dtype, tokens: int = 256,
                seconds: float = 1.0, repeats: int = 5) -> float:
    """Single-thread GFLOP/s of ``(tokens, d) @ (d, vocab)`` in ``dtype``: the best of
    ``repeats`` timed runs of ``seconds`` each (a peak; single runs varied by 25% here)."""
    a, b = torch.randn(tokens, d, dtype=dtype), torch.randn(d, vocab, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            count += 1
        best = max(best, 2 * tokens * d * vocab * count / (time.perf_counter() - start) / 1e9)
    return best


def main() -> None:
    """Print achieved GFLOP/s and the fraction of each dtype's peak for each JSON given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="bench_train.py JSON files")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.results:
        data = json.load(open(path))
        case = data["args"]["case"]
        layers, d, vocab, params = SHAPES[case]
        rate = data["summary"]["lensbook"]["tokens_per_s"]["median"]
        achieved = rate * flop_per_token(layers, d, vocab, params) / 1e9
        peaks = {name: matmul_peak(d, vocab, dtype)
                 for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32))}
        shares = ", ".join(f"{achieved / peak:.0%} of the {name} peak ({peak:.0f} GFLOP/s)"
                           for name, peak in peaks.items())
        print(f"{path}: lensbook {rate:.0f} tokens/s = {achieved:.1f} GFLOP/s; {shares}")


if __name__ == "__main__":
    main()
