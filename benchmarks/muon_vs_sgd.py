"""Tuned lenses on ``lensbook-tiny`` trained with SGD-Nesterov, AdamW and Muon at equal tokens.

Every run gets the same training chunks in the same order (the ``quick`` preset's budget
unless ``--steps`` says otherwise), and every lens is scored on the same held-out chunks
of the embedded corpus's test split: KL(output ‖ lens) per layer in nats/token.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/muon_vs_sgd.py \\
        --runs sgd:1.0 adamw:1e-3 muon:1e-3 muon:3e-3 muon:1e-2 --threads 1 \\
        --out benchmarks/results/muon_vs_sgd.json

Each run is ``optimizer:lr`` (the *effective* learning rate of
:class:`lensbook.training.config.TrainConfig`). The script prints a Markdown table
(layers as rows, runs as columns) and writes all numbers, with seconds per run, as JSON.
Runs split across processes (one JSON each) join into one table with
``python benchmarks/muon_vs_sgd.py --merge a.json b.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import lensbook
from lensbook import LogitLens, TrainConfig, load_model, train_lens
from lensbook.analysis.evaluate import evaluate_lenses, pivot
from lensbook.embedded.corpus import load_corpus
from lensbook.training.data import chunk_texts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", nargs="+", default=["sgd:1.0", "muon:3e-3"],
                        help="optimizer:lr pairs (default: sgd:1.0 muon:3e-3)")
    parser.add_argument("--preset", default="quick", help="token budget preset (default quick)")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    parser.add_argument("--eval-tokens", type=int, default=2**16,
                        help="held-out tokens (default 65536)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", default="benchmarks/results/muon_vs_sgd.json")
    parser.add_argument("--merge", nargs="+", default=None,
                        help="print one table of these JSON files instead of running")
    return parser.parse_args(argv)


def one_run(model, train, held_out, spec: str, base: TrainConfig) -> dict:
    """Train one lens (``optimizer:lr``) and score it on the held-out chunks."""
    optimizer, lr = spec.split(":")
    config = TrainConfig.preset(base.name, optimizer=optimizer, lr=float(lr), steps=base.steps,
                                num_threads=base.threads, progress=False)
    start = time.perf_counter()
    lens, history = train_lens(model, train, config)
    seconds = time.perf_counter() - start
    kl = pivot(evaluate_lenses(model, {spec: lens}, held_out))[spec]
    return {"run": spec, "optimizer": optimizer, "lr": float(lr), "seconds": seconds,
            "tokens": len(history) * history.tokens_per_step, "kl": kl.tolist(),
            "train_kl_last": history.loss[-1]}


def markdown(results: list[dict], logit: list[float]) -> str:
    """Layers as rows, the logit lens and each run as columns, a mean row at the bottom."""
    head = "| layer | logit lens | " + " | ".join(r["run"] for r in results) + " |"
    rule = "|---:" * (len(results) + 2) + "|"
    rows = [f"| {i} | {logit[i]:.3f} | " + " | ".join(f"{r['kl'][i]:.3f}" for r in results)
            + " |" for i in range(len(logit))]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    rows.append(f"| mean | {mean(logit):.3f} | "
                + " | ".join(f"{mean(r['kl']):.3f}" for r in results) + " |")
    rows.append("| seconds | | " + " | ".join(f"{r['seconds']:.0f}" for r in results) + " |")
    return "\n".join([head, rule, *rows])


def merged_table(paths: list[str]) -> str:
    """One table from several JSON files of this script (runs split across processes)."""
    records = [json.loads(Path(p).read_text()) for p in paths]
    return markdown([r for rec in records for r in rec["runs"]], records[0]["logit_kl"])


def main(argv: list[str] | None = None) -> None:
    """Run every ``--runs`` entry, print the table, write the JSON."""
    args = parse_args(argv)
    if args.merge:
        print(merged_table(args.merge))
        return
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model("lensbook-tiny")
    preset = TrainConfig.preset(args.preset)
    steps = args.steps or preset.steps
    base = argparse.Namespace(name=args.preset, steps=steps, threads=args.threads)
    train = chunk_texts(load_corpus("train"), tokenizer, preset.seq_len,
                        max_tokens=steps * preset.chunks_per_step * preset.seq_len)
    held_out = chunk_texts(load_corpus("test"), tokenizer, preset.seq_len,
                           max_tokens=args.eval_tokens)
    logit = pivot(evaluate_lenses(model, {"logit": LogitLens.from_model(model)}, held_out))
    record = {"preset": args.preset, "steps": steps, "eval_tokens": args.eval_tokens,
              "threads": args.threads, "torch": torch.__version__,
              "lensbook": lensbook.__version__, "machine": platform.platform(),
              "logit_kl": logit["logit"].tolist(), "runs": []}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for spec in args.runs:  # the JSON is rewritten after every run: a cut-short sweep keeps some
        record["runs"].append(one_run(model, train, held_out, spec, base))
        record["table"] = markdown(record["runs"], record["logit_kl"])
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
        print(record["table"], flush=True)


if __name__ == "__main__":
    main()
