"""Held-out KL of lensbook-tiny's tuned lens: file-order vs whole-data sampling, fp32 vs bf16.

Issue 18 items 2 and 3. Training on the first ``tokens_needed`` tokens of the corpus in
file order (lensbook before: topics first, then modules alphabetically) against chunks
drawn from documents in a seeded random order over the whole training split (now), at
20 and 150 steps of the ``quick`` preset (4,096 tokens/step, chunks of 256), float32
matmuls; then whole-data at 150 steps with bf16 matmuls (``dtype="auto"`` on a CPU with
native bf16) against float32. Every lens is scored on the same held-out chunks of the
test split. 20-step runs use 3 seeds (medians); 150-step runs one seed.

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sampling_dtype.py`` (about 15
minutes on one core); writes ``benchmarks/results/sampling_dtype.json`` and prints
markdown tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lensbook import LogitLens, load_model
from lensbook.analysis.evaluate import evaluate_lenses, pivot
from lensbook.embedded.corpus import load_corpus
from lensbook.training.config import TrainConfig
from lensbook.training.data import chunk_texts
from lensbook.training.loop import train_lens
from lensbook.training.sources import load_chunks


def held_out_kl(model, lens, held_out) -> list[float]:
    frame = evaluate_lenses(model, {"tuned": lens}, held_out, batch_size=8)
    return [float(v) for v in pivot(frame, "kl")["tuned"].dropna()]


def train(model, tokenizer, order: str, steps: int, seed: int, dtype: str, whole) -> dict:
    config = TrainConfig.preset("quick", steps=steps, seed=seed, dtype=dtype, progress=False)
    if order == "file":
        data = chunk_texts(load_corpus("train"), tokenizer, config.seq_len,
                           max_tokens=config.tokens_needed)
    else:
        data = whole[seed]
    start = time.perf_counter()
    lens, history = train_lens(model, data, config)
    return {"order": order, "steps": steps, "seed": seed, "dtype": dtype,
            "train_s": time.perf_counter() - start, "lens": lens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--long-steps", type=int, default=150)
    parser.add_argument("--eval-tokens", type=int, default=2**16)
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only these ORDER:STEPS:DTYPE, e.g. whole:150:bfloat16")
    parser.add_argument("--out", default="benchmarks/results/sampling_dtype.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, tokenizer = load_model("lensbook-tiny")
    held_out = chunk_texts(load_corpus("test"), tokenizer, 256, max_tokens=args.eval_tokens)
    plan = [(o, 20, s, "float32") for o in ("file", "whole") for s in args.seeds]
    plan += [(o, args.long_steps, args.seeds[0], "float32") for o in ("file", "whole")]
    plan += [("whole", args.long_steps, args.seeds[0], "bfloat16")]
    if args.only is not None:
        plan = [run for run in plan if f"{run[0]}:{run[1]}:{run[3]}" in args.only]
    seeds = {seed for order, _, seed, _ in plan if order == "whole"}
    whole = {s: load_chunks("corpus", tokenizer, 256, shuffle=s) for s in seeds}  # slow
    rows = []
    for order, steps, seed, dtype in plan:
        run = train(model, tokenizer, order, steps, seed, dtype, whole)
        run["kl"] = held_out_kl(model, run.pop("lens"), held_out)
        rows.append(run)
        print(json.dumps(run), flush=True)
    logit = LogitLens.from_model(model)
    result = {"runs": rows, "logit_kl": held_out_kl(model, logit, held_out),
              "threads": 1, "torch": torch.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.only is None:
        print(tables(rows, args.long_steps))


def _median_kl(rows, **where) -> list[float]:
    chosen = [r["kl"] for r in rows if all(r[k] == v for k, v in where.items())]
    return [statistics.median(layer) for layer in zip(*chosen, strict=True)]


def tables(rows: list[dict], long_steps: int) -> str:
    lines = ["| steps | layer | file order | whole data | whole / file |", "|---|---|---|---|---|"]
    for steps in (20, long_steps):
        file_kl = _median_kl(rows, order="file", steps=steps, dtype="float32")
        whole_kl = _median_kl(rows, order="whole", steps=steps, dtype="float32")
        for layer, (a, b) in enumerate(zip(file_kl, whole_kl, strict=True)):
            lines.append(f"| {steps} | {layer} | {a:.4f} | {b:.4f} | {b / a:.3f} |")
    lines += ["", "| layer | fp32 | bf16 | bf16 / fp32 |", "|---|---|---|---|"]
    fp32 = _median_kl(rows, order="whole", steps=long_steps, dtype="float32")
    bf16 = _median_kl(rows, order="whole", steps=long_steps, dtype="bfloat16")
    for layer, (a, b) in enumerate(zip(fp32, bf16, strict=True)):
        lines.append(f"| {layer} | {a:.4f} | {b:.4f} | {b / a:.4f} |")
    seconds = {(r["order"], r["steps"], r["dtype"]): r["train_s"] for r in rows}
    lines.append("")
    lines.append("training seconds (1 thread, shared machine): " + ", ".join(
        f"{o} {s} steps {d}: {t:.0f}" for (o, s, d), t in seconds.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
