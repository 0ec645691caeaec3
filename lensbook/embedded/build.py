"""Rebuild the embedded default model ``lensbook-tiny`` from scratch, offline.

Usage::

    python -m lensbook.build_default [--size {tiny,mini,nano}] [--family {gpt2,gpt_neo,opt}]
        [--steps N | --minutes M] [--seed S] [--threads T] [--out DIR] [--fast]

Steps: build the corpus (:mod:`lensbook.embedded.corpus`), train a byte-level BPE tokenizer,
cut the text into chunks (:mod:`lensbook.training.data`), pretrain a model
(:mod:`lensbook.embedded.pretrain`), measure the held-out loss on the whole test split, and
write the model folder with its card (:mod:`lensbook.embedded.card`). ``--fast`` runs
the same pipeline on a slice of the corpus with a tiny model in a few seconds.
``--size`` picks one of the shipped sizes (``tiny`` is the default model; ``mini`` and
``nano`` are the smaller siblings that the paper's Fig. 5 compares across sizes), and
``--family`` an architecture (``gpt_neo`` and ``opt`` give ``lensbook-nano-neo`` and
``lensbook-nano-opt``, same data and size, for the paper's Fig. 14).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from lensbook.embedded import corpus
from lensbook.embedded.card import write_card
from lensbook.embedded.families import ASSETS, FAMILIES, model_name
from lensbook.embedded.pretrain import (
    PretrainConfig,
    greedy_samples,
    make_model,
    mean_loss,
    train,
)
from lensbook.embedded.tokenizer import save_tokenizer, train_tokenizer
from lensbook.training.data import chunk_texts

SIZES = {  # name -> shape; the small ones see as many tokens as tiny (2,403 steps)
    "tiny": PretrainConfig(),
    "mini": PretrainConfig(n_layer=4, n_embd=96, n_head=3, steps=2400),
    "nano": PretrainConfig(n_layer=3, n_embd=64, n_head=2, steps=2400),
}
# One thread: on a shared 2-core machine, 2 threads fell from ~6.8k to ~1.7-4.4k
# tokens/s whenever another process was busy, while 1 thread kept ~4.5k.
THREADS = 1
FAST_CONFIG = PretrainConfig(  # the whole pipeline in seconds, for tests
    vocab_size=512, n_layer=2, n_embd=32, n_head=2, seq_len=64, batch_size=8,
    steps=30, warmup_steps=5, eval_every=10, eval_chunks=8,
)
FAST_CHARS = {"train": 150_000, "test": 30_000}
SAMPLE_PROMPTS = [
    "The for statement",
    "Return a new",
    "This module provides",
    "def __init__(self",
]


def _evaluate(model, tokenizer, test, seq_len: int) -> dict:
    """Held-out loss on the whole test split and on each kind of document."""
    parts = {"all": test}
    for kind in corpus.KINDS:
        subset = test.select([i for i, k in enumerate(test["kind"]) if k == kind])
        if len(subset):
            parts[kind] = subset
    results = {}
    for name, docs in parts.items():
        chunks = chunk_texts(docs, tokenizer, seq_len)
        nats = mean_loss(model, chunks.input_ids)
        results[name] = {"nats_per_token": nats, "tokens": chunks.input_ids.numel(),
                         "bits_per_byte": nats * chunks.bits_per_byte_factor}
    return results


def _corpus_info(train_docs, test_docs, train_chunks, test_chunks) -> dict:
    return {
        "fingerprint": corpus.corpus_fingerprint(),
        "modules": len({i.split(":", 1)[1] for i in [*train_docs["id"], *test_docs["id"]]
                        if not i.startswith("topic:")}),
        "test_percent": corpus.TEST_PERCENT,
        "train_docs": len(train_docs), "test_docs": len(test_docs),
        "train_chars": sum(map(len, train_docs["text"])),
        "test_chars": sum(map(len, test_docs["text"])),
        "train_tokens": train_chunks.n_tokens, "test_tokens": test_chunks.n_tokens,
    }


def build(cfg: PretrainConfig, out: Path, fast: bool = False, command: str = "",
          name: str = "lensbook-tiny") -> dict:
    """Run the whole pipeline, write the model folder, and return the build record."""
    limit = FAST_CHARS if fast else {"train": None, "test": None}
    train_docs = corpus.load_corpus("train", max_chars=limit["train"])
    test_docs = corpus.load_corpus("test", max_chars=limit["test"])
    tokenizer = train_tokenizer(train_docs["text"], cfg.vocab_size)
    train_chunks = chunk_texts(train_docs, tokenizer, cfg.seq_len)
    test_chunks = chunk_texts(test_docs, tokenizer, cfg.seq_len)
    model = make_model(cfg, tokenizer.eos_token_id)
    start = time.time()
    curve = train(model, train_chunks.input_ids, test_chunks.input_ids, cfg)
    seconds = time.time() - start
    tokens = curve[-1]["tokens"]
    info = {
        "python_version": platform.python_version(),
        "config": dataclasses.asdict(cfg),
        "n_params": sum(p.numel() for p in model.parameters()),
        "corpus": _corpus_info(train_docs, test_docs, train_chunks, test_chunks),
        "curve": curve,
        "training": {"steps": curve[-1]["step"], "tokens": tokens, "minutes": seconds / 60,
                     "tokens_per_second": tokens / seconds,
                     "hardware": f"{platform.machine()} CPU, torch threads: "
                                 f"{torch.get_num_threads()}"},
        "eval": _evaluate(model, tokenizer, test_docs, cfg.seq_len),
        "samples": greedy_samples(model, tokenizer, SAMPLE_PROMPTS,
                                  new_tokens=8 if fast else 40),
        "command": command,
        "name": name,
    }
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.model_max_length = cfg.seq_len
    save_tokenizer(tokenizer, out)
    (out / "training_log.json").write_text(json.dumps(info, indent=2) + "\n")
    write_card(out, info)
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m lensbook.build_default",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny",
                        help="model size (default tiny, the embedded default model)")
    parser.add_argument("--family", choices=sorted(FAMILIES), default="gpt2",
                        help="architecture (default gpt2)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimiser steps (reproducible)")
    budget.add_argument("--minutes", type=float,
                        help="wall-clock training budget; the schedule follows elapsed time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"torch CPU threads (default {THREADS})")
    parser.add_argument("--out", type=Path,
                        help=f"output folder (default {ASSETS}/lensbook-SIZE, or a temp dir "
                             "with --fast)")
    parser.add_argument("--fast", action="store_true",
                        help="tiny corpus slice, tiny model, few steps (for tests)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Command-line entry point; returns the build record."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    name = model_name(args.size, args.family)
    cfg = FAST_CONFIG if args.fast else SIZES[args.size]
    cfg = dataclasses.replace(cfg, seed=args.seed, steps=args.steps or cfg.steps,
                              minutes=args.minutes, family=args.family)
    out = args.out or (Path(tempfile.mkdtemp(prefix=f"{name}-")) if args.fast
                       else ASSETS / name)
    budget = f"--minutes {args.minutes:g}" if args.minutes else f"--steps {cfg.steps}"
    size = "" if args.size == "tiny" else f" --size {args.size}"
    size += "" if args.family == "gpt2" else f" --family {args.family}"
    command = (f"python -m lensbook.build_default{size} {budget} --seed {args.seed} "
               f"--threads {args.threads}" + (" --fast" if args.fast else ""))
    info = build(cfg, out, fast=args.fast, command=command, name=name)
    total = info["eval"]["all"]
    print(f"held-out: {total['nats_per_token']:.4f} nats/token, "
          f"{total['bits_per_byte']:.4f} bits/byte; wrote {out}", file=sys.stderr)
    return info


if __name__ == "__main__":
    main()
