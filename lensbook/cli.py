r"""Command line: ``python -m lensbook train …`` and ``python -m lensbook eval …``.

``train`` writes into ``--output``: the lens (``config.json``, ``params.pt``,
``params.safetensors``, loadable with :func:`lensbook.load_lens`), ``train_config.json``,
``history.csv`` (per-layer loss per step) and, unless ``--eval-tokens 0``,
``metrics.csv``/``metrics.json`` on held-out data. ``eval`` writes ``metrics.*`` (and
``transfer.*`` with ``--transfer``). Under ``torchrun`` every process trains on its shard
of each global batch and rank 0 writes the files.

Example::

    python -m lensbook train --preset quick --output lenses/tiny
    torchrun --nproc-per-node 8 -m lensbook train --model EleutherAI/pythia-160m \
        --data monology/pile-uncopyrighted --streaming --output lenses/pythia-160m
    python -m lensbook eval --lens lenses/tiny --output lenses/tiny/eval
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

import torch

from lensbook.analysis.evaluate import evaluate_lenses, evaluation_memory, pivot, save_metrics
from lensbook.analysis.transfer import transfer_matrix
from lensbook.core.errors import LensbookError
from lensbook.core.files import load_lens, save_lens
from lensbook.core.lens import LENS_TYPES, Lens, LogitLens, lens_class
from lensbook.core.model import DEFAULT_MODEL, load_model
from lensbook.core.tuned import LENS_TYPE
from lensbook.training import distributed
from lensbook.training.config import PRESETS, TrainConfig, field_help
from lensbook.training.loop import train_lens, training_memory
from lensbook.training.shuffle import BUFFER_SIZE
from lensbook.training.sources import load_chunks

# What a TrainConfig field means on the command line, where that differs from the field.
CLI_NOTES = {"clip_grad_norm": "On the command line, 0 disables it.",
             "checkpoint_dir": "Default on the command line: OUTPUT/checkpoints."}
TYPES = {"int": int, "float": float, "str": str}
# Errors that are the user's to fix (a message says how), printed without a traceback:
# lensbook's own, bad values and missing or unreadable files (OSError, from transformers
# and the Hub), a diverging run and a GPU out of memory (lower --batch-size or --chunk-mb).
# Anything else is a bug and keeps its traceback.
USER_ERRORS = (LensbookError, ValueError, OSError, FloatingPointError,
               torch.cuda.OutOfMemoryError)


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`TrainConfig` field, its help from the field's docstring.

    Defaults are ``None``: the ``--preset`` supplies the values not given.
    """
    helps = field_help()
    for f in fields(TrainConfig):
        option = "--" + f.name.replace("_", "-")
        text = " ".join(filter(None, [helps[f.name], CLI_NOTES.get(f.name)])).replace("%", "%%")
        kind = str(f.type).split("|")[0].strip()
        if kind == "bool":
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=None,
                                help=text)
        else:
            parser.add_argument(option, type=TYPES[kind], default=None, help=text,
                                choices=f.metadata.get("choices"))


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"Hub name, local folder or embedded model (default {DEFAULT_MODEL})")
    parser.add_argument("--model-dtype", default=None, choices=["auto", "float32", "bfloat16",
                                                                "float16"],
                        help="dtype to load the model weights in (default float32)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda if available; under torchrun "
                             "cuda:LOCAL_RANK)")
    parser.add_argument("--device-map", default=None,
                        help="'auto' spreads a model too big for one GPU over the visible GPUs, "
                             "layer by layer (the lens lives on the first); one process only")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run code shipped with the model (off unless given)")


def _add_data_options(parser: argparse.ArgumentParser, split: str) -> None:
    parser.add_argument("--data", default="corpus",
                        help="'corpus' (embedded), a .txt/.jsonl file or folder, a saved data "
                             "set folder, or a Hub data set name (default corpus)")
    parser.add_argument("--split", default=split, help=f"split to read (default {split})")
    parser.add_argument("--subset", default=None, help="Hub data set configuration name")
    parser.add_argument("--text-column", default="text", help="column with the text")
    parser.add_argument("--streaming", action="store_true",
                        help="stream a Hub data set, reading only what is needed")


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-tokens", type=int, default=None,
                        help="tokens of training text to draw the chunks from, read from "
                             "documents in a random order (default: the whole source; with "
                             "--streaming, the run's budget)")
    parser.add_argument("--shuffle-buffer", type=int, default=BUFFER_SIZE,
                        help="documents held by the shuffle buffer of a streaming source "
                             f"(default {BUFFER_SIZE:,})")


def build_parser() -> argparse.ArgumentParser:
    """The ``lensbook`` argument parser with its ``train`` and ``eval`` commands."""
    parser = argparse.ArgumentParser(prog="python -m lensbook", description=__doc__.split("\n")[0])
    parser.add_argument("--traceback", action="store_true",
                        help="on an error, show the full Python traceback, not one line")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a tuned lens",
                                description="Train a tuned (or bias-only) lens.")
    _add_model_options(train)
    _add_data_options(train, "train")
    _add_sampling_options(train)
    train.add_argument("--preset", default="paper", choices=sorted(PRESETS),
                       help="starting values of the options below (default paper)")
    _add_config_options(train)
    trainable = sorted(t for t, cls in LENS_TYPES.items() if cls.config_class is not None)
    train.add_argument("--lens-type", default=LENS_TYPE, choices=trainable,
                       help=f"registered lens type to train (default {LENS_TYPE})")
    train.add_argument("--bias-only", action="store_true", help="train only the biases b_l")
    train.add_argument("--sublayers", action="store_true",
                       help="also a translator after each block's attention (rows 0, 0.attn, "
                            "1, …; sequential-attention models only)")
    train.add_argument("--shard", action="store_true",
                       help="shard the model and lens across processes (FSDP2): not "
                            "implemented; refused with what to do instead")
    train.add_argument("--output", "-o", required=True, help="folder for the lens and records")
    train.add_argument("--eval-split", default="test", help="held-out split (default test)")
    train.add_argument("--eval-tokens", type=int, default=2**17,
                       help="held-out tokens to evaluate after training; 0 skips (default 131072)")
    ev = commands.add_parser("eval", help="evaluate lenses on held-out data",
                             description="Per-layer metrics of the logit lens and tuned lenses.")
    _add_model_options(ev)
    _add_data_options(ev, "test")
    ev.add_argument("--lens", default=None, help="tuned lens folder (omit: logit lens only)")
    ev.add_argument("--bias-only-lens", default=None, help="bias-only lens folder")
    ev.add_argument("--seq-len", type=int, default=None,
                    help="tokens per chunk (default: the lens's training seq_len, else 2048)")
    ev.add_argument("--max-tokens", type=int, default=2**17, help="tokens read (default 131072)")
    ev.add_argument("--batch-size", type=int, default=8, help="chunks per forward pass")
    ev.add_argument("--chunk-mb", type=float, default=256.0, help="MiB of fp32 buffers at once")
    ev.add_argument("--transfer", action="store_true", help="also write the transfer matrix")
    ev.add_argument("--num-threads", type=int, default=None, help="CPU threads for torch")
    ev.add_argument("--output", "-o", required=True, help="folder for metrics.csv/json")
    return parser


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if getattr(args, f.name) is not None}
    if overrides.get("clip_grad_norm") == 0:
        overrides["clip_grad_norm"] = None
    overrides.setdefault("checkpoint_dir", str(Path(args.output) / "checkpoints"))
    return TrainConfig.preset(args.preset, **overrides)


def _load(args: argparse.Namespace, rank: distributed.Rank):
    device = args.device
    if device is None:
        device = f"cuda:{rank.local_rank}" if torch.cuda.is_available() else "cpu"
    return load_model(args.model, dtype=args.model_dtype, device=device,
                      device_map=args.device_map, trust_remote_code=args.trust_remote_code)


def _chunks(args, tokenizer, seq_len: int, split: str, max_tokens: int | None, **shuffle):
    return load_chunks(args.data, tokenizer, seq_len, split=split, max_tokens=max_tokens,
                       text_column=args.text_column, subset=args.subset,
                       streaming=args.streaming, **shuffle)


def _training_chunks(args, tokenizer, config: TrainConfig):
    """Chunks to train on, from documents in a seeded random order over the whole source.

    The loop then draws the run's chunks at random from all of them; a streaming source
    is read through a shuffle buffer up to ``--data-tokens`` (default: the budget).
    """
    budget = args.data_tokens or (config.tokens_needed if args.streaming else None)
    return _chunks(args, tokenizer, config.seq_len, args.split, budget, shuffle=config.seed,
                   buffer_size=args.shuffle_buffer)


def run_train(args: argparse.Namespace) -> int:
    """The ``train`` command."""
    distributed.check_sharding(args.shard)
    rank = distributed.init_from_env()
    config = _config_from_args(args)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    model, tokenizer = _load(args, rank)
    data = _training_chunks(args, tokenizer, config)
    options = {"bias_only": True} if args.bias_only else {}
    if args.sublayers:
        options["sublayers"] = True
    lens = lens_class(args.lens_type).from_model(model, **options)
    if rank.primary:
        print(training_memory(model, lens, config), flush=True)
    lens, history = train_lens(model, data, config, lens)
    if not rank.primary:
        return 0
    tokens, seconds = len(history) * history.tokens_per_step, history.seconds[-1]
    print(f"trained {tokens} tokens in {seconds:.1f} s ({tokens / seconds:.0f} tokens/s)")
    out = Path(args.output)
    lens.config.training["data"] = {"source": args.data, "split": args.split,
                                    "subset": args.subset}
    save_lens(lens, out)
    record = {"config": config.to_dict(), "argv": sys.argv, "model": args.model,
              "data": lens.config.training["data"], "bias_only": args.bias_only,
              "lens_type": lens.lens_type}
    (out / "train_config.json").write_text(json.dumps(record, indent=2) + "\n")
    history.to_frame().to_csv(out / "history.csv", index=False)
    if args.eval_tokens:
        held_out = _chunks(args, tokenizer, config.seq_len, args.eval_split, args.eval_tokens)
        logit = LogitLens.from_model(model, sublayers=args.sublayers)
        lenses = {each.label: each for each in (logit, lens)}
        chunk_mb = config.chunk_mb or 256.0
        print(evaluation_memory(model, lenses, config.seq_len, batch_size=config.batch_size,
                                chunk_mb=chunk_mb), flush=True)
        frame = evaluate_lenses(model, lenses, held_out, batch_size=config.batch_size,
                                chunk_mb=chunk_mb)
        save_metrics(frame, out / "metrics")
        print(pivot(frame, "kl").to_string(float_format="%.4f"))
    print(f"lens written to {out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """The ``eval`` command."""
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    model, tokenizer = _load(args, distributed.Rank())
    loaded = [load_lens(folder, model) for folder in (args.lens, args.bias_only_lens) if folder]
    sublayers = any(getattr(lens, "sublayers", False) for lens in loaded)
    logit = LogitLens.from_model(model, sublayers=sublayers)
    lenses = {each.label: each for each in (logit, *loaded)}
    seq_len = args.seq_len or next(filter(None, map(_trained_seq_len, loaded)), None) or 2048
    data = _chunks(args, tokenizer, seq_len, args.split, args.max_tokens)
    out = Path(args.output)
    print(evaluation_memory(model, lenses, seq_len, batch_size=args.batch_size,
                            chunk_mb=args.chunk_mb), flush=True)
    frame = evaluate_lenses(model, lenses, data, batch_size=args.batch_size,
                            chunk_mb=args.chunk_mb, progress=True)
    save_metrics(frame, out / "metrics")
    print(pivot(frame, "kl").to_string(float_format="%.4f"))
    if args.transfer and args.lens:
        save_metrics(transfer_matrix(model, loaded[0], data, batch_size=args.batch_size,
                                     chunk_mb=args.chunk_mb), out / "transfer")
    print(f"metrics written to {out}")
    return 0


def _trained_seq_len(lens: Lens) -> int | None:
    training = getattr(getattr(lens, "config", None), "training", None) or {}
    return training.get("config", {}).get("seq_len")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status.

    A user error (bad input, a missing or broken file, too little data, NaN loss) is
    printed as one line, ``lensbook: error: …``, and the status is 1; ``--traceback``
    shows the full traceback instead.
    """
    args = build_parser().parse_args(argv)
    try:
        return run_train(args) if args.command == "train" else run_eval(args)
    except USER_ERRORS as err:
        if args.traceback:
            raise
        print(f"lensbook: error: {one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lensbook: interrupted", file=sys.stderr)
        return 130


def one_line(err: BaseException) -> str:
    """The error's message on one line (transformers' and the Hub's span several)."""
    return " ".join(str(err).split()) or type(err).__name__
