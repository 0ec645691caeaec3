"""Train a tuned lens with the reference ``tuned-lens`` 0.2.0 and with lensbook, and compare.

Both tools get the same local model folder, the same training text (a ``.jsonl`` of
corpus documents), the same chunk length, token budget, micro-batch and optimiser
settings (the paper's), and run one after the other. Each run is wrapped in
``/usr/bin/time -v`` (peak RSS) and ``benchmarks/peak_memory.py`` (peak CUDA memory);
training throughput is tokens / seconds of the training loop (the reference's tqdm
bar, lensbook's history). Both lenses are then scored by lensbook's evaluator on the
same held-out chunks of the corpus's test split.

The tools run as interleaved pairs (reference, then lensbook, ``--pairs`` times, seed
``--seed + i`` for pair ``i``), so that slow drifts of a shared machine hit both alike;
the report gives medians and ranges (min-max) of throughput, wall, user and system time
and peak RSS, the per-pair throughput ratio, and the held-out KL per layer as the median
over the pairs' seeds.

Usage (from the repository root; see benchmarks/compare_reference.sh)::

    .venv/bin/python benchmarks/bench_train.py --case tiny --pairs 3 --ref-batch-size 4
    .venv/bin/python benchmarks/bench_train.py --case gpt2-small --steps 4 --tokens-per-step 1024
    .venv/bin/python benchmarks/bench_train.py --case tiny --lensbook-dtype bfloat16 \
        --ref-precision bfloat16   # like-for-like bf16
    .venv/bin/python benchmarks/bench_train.py --case tiny --device cuda   # GPU variant, bf16

What the dtypes mean. The reference always computes its lens under bf16 autocast
(``torch.autocast(device, dtype=bfloat16)`` around every layer's lens and loss in its
``train_loop.py``); its ``--precision`` only sets the dtype the *model* is loaded in
(default: as saved, float32 here). So the reference cannot train in float32: a
``--lensbook-dtype float32 --ref-precision float32`` run compares lensbook in float32
with the reference's bf16 lens. Default against default (both models float32, both lens
matmuls bf16 on a CPU with native bf16) is the like-for-like run; ``--ref-precision
bfloat16`` also loads lensbook's model in bf16 (``--model-dtype bfloat16``), as the
reference's does.

Workarounds for the reference (its installed source is not modified):
* its transformers 4.57 cannot read the ``tokenizer_class: TokenizersBackend`` that
  transformers 5 writes, so the model folder's copy says ``PreTrainedTokenizerFast``;
* it caches tokenised data sets, so every run gets a fresh ``HF_DATASETS_CACHE``;
* it stops silently when data runs out, so the text holds 20% more than the budget
  and the script checks that its progress bar reached the last batch.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers as tf

from lensbook import LogitLens, load_lens, load_model
from lensbook.analysis.evaluate import evaluate_lenses, pivot
from lensbook.core.model import EMBEDDED_MODELS
from lensbook.embedded.corpus import load_corpus
from lensbook.training.data import chunk_texts

ROOT = Path(__file__).resolve().parent.parent
REF_PYTHON = Path(os.environ.get("REF_VENV", ROOT / ".venv-ref")) / "bin" / "python"
PEAK = str(ROOT / "benchmarks" / "peak_memory.py")


def prepare_model(case: str, folder: Path, source: str | None = None) -> Path:
    """A local model folder both tools can read (see the module docstring)."""
    target = folder / "model"
    tiny = EMBEDDED_MODELS["lensbook-tiny"]
    if case == "tiny":
        shutil.copytree(source or tiny, target, ignore=shutil.ignore_patterns("lens", "*.md"))
    else:  # random weights with a real model's shape, lensbook-tiny's tokenizer
        _, tokenizer = load_model("lensbook-tiny")
        eos = tokenizer.eos_token_id
        if case == "gpt2-small":
            config = tf.GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257,
                                   n_positions=1024, bos_token_id=eos, eos_token_id=eos)
        else:  # pythia-410m
            config = tf.GPTNeoXConfig(num_hidden_layers=24, hidden_size=1024,
                                      num_attention_heads=16, intermediate_size=4096,
                                      vocab_size=50304, max_position_embeddings=2048,
                                      bos_token_id=eos, eos_token_id=eos)
        torch.manual_seed(0)
        tf.AutoModelForCausalLM.from_config(config).save_pretrained(target)
        tokenizer.save_pretrained(target)
    config_path = target / "tokenizer_config.json"
    tok_config = json.loads(config_path.read_text())
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(tok_config))
    return target


def prepare_data(folder: Path, tokenizer, budget: int, seq_len: int, eval_tokens: int):
    """Training text as .jsonl (budget + 20%) and held-out chunks of the test split."""
    rows, tokens = [], 0
    for text in load_corpus("train")["text"]:
        rows.append(json.dumps({"text": text}))
        tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1
        if tokens >= 1.2 * budget:
            break
    if tokens < 1.2 * budget:
        raise SystemExit(f"the corpus holds {tokens} tokens, the budget needs {1.2 * budget:.0f}")
    (folder / "train.jsonl").write_text("\n".join(rows) + "\n")
    return chunk_texts(load_corpus("test"), tokenizer, seq_len, max_tokens=eval_tokens)


def run_timed(cmd: list[str], log: Path, env: dict) -> dict:
    """Run ``cmd`` under ``/usr/bin/time -v``; return wall seconds, peak RSS and the log."""
    with open(log, "w") as out:
        subprocess.run(["/usr/bin/time", "-v", *cmd], stdout=out, stderr=subprocess.STDOUT,
                       env=env, check=True, cwd=ROOT)
    text = log.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    system = re.search(r"System time \(seconds\): ([\d.]+)", text)
    cuda = re.search(r"PEAK_CUDA_MIB ([\d.]+)", text)
    h, m, s = (float(g or 0) for g in wall.groups())
    return {"wall_s": 3600 * h + 60 * m + s, "peak_rss_mib": int(rss.group(1)) / 1024,
            "user_s": float(user.group(1)), "sys_s": float(system.group(1)),
            "peak_cuda_mib": float(cuda.group(1)) if cuda else None, "log": text}


def run_reference(args, model_dir: Path, work: Path, env: dict, pair: int) -> dict:
    per_batch = args.tokens_per_step // args.seq_len
    micro = args.ref_batch_size or args.batch_size
    cmd = [str(REF_PYTHON), PEAK, "tuned_lens", "train", "--model.name", str(model_dir),
           "--data.name", str(work / "train.jsonl"), "--max_length", str(args.seq_len),
           "--num_steps", str(args.steps), "--tokens_per_step", str(args.tokens_per_step),
           "--per_gpu_batch_size", str(min(micro, per_batch)),
           "--seed", str(args.seed + pair), "--output", str(work / f"reference-{pair}")]
    precision = args.ref_precision or ("bfloat16" if args.device == "cuda" else None)
    if precision:
        cmd += ["--precision", precision]
    cache = {"HF_DATASETS_CACHE": str(work / f"c1-{pair}")}
    result = run_timed(cmd, work / f"reference-{pair}.log", env | cache)
    bars = re.findall(r"Training:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+) \[(?:(\d+):)?(\d+):(\d+)<",
                      result["log"])
    done, total, h, m, s = bars[-1]
    if done != total:
        raise SystemExit(f"the reference stopped early at batch {done} of {total}")
    result["train_s"] = 3600 * int(h or 0) + 60 * int(m) + int(s)
    return result


def run_lensbook(args, model_dir: Path, work: Path, env: dict, pair: int) -> dict:
    cmd = [sys.executable, PEAK, "lensbook", "train", "--model", str(model_dir),
           "--data", str(work / "train.jsonl"), "--seq-len", str(args.seq_len),
           "--steps", str(args.steps), "--tokens-per-step", str(args.tokens_per_step),
           "--batch-size", str(args.batch_size), "--seed", str(args.seed + pair),
           "--eval-tokens", "0", "--no-progress", "--output", str(work / f"lensbook-{pair}"),
           "--device", args.device, "--dtype", args.lensbook_dtype]
    if args.device == "cuda" or args.ref_precision == "bfloat16":
        cmd += ["--model-dtype", "bfloat16"]  # as the reference's --precision bfloat16 does
    cache = {"HF_DATASETS_CACHE": str(work / f"c2-{pair}")}
    result = run_timed(cmd, work / f"lensbook-{pair}.log", env | cache)
    result["train_s"] = float(re.search(r"tokens in ([\d.]+) s", result["log"]).group(1))
    return result


def score(model_dir: Path, work: Path, held_out, device: str, pair: int) -> dict:
    """Per-layer held-out KL (nats/token) of the logit lens and both trained lenses."""
    model, _ = load_model(str(model_dir), device=device)
    lenses = {"logit": LogitLens.from_model(model),
              "reference": load_lens(work / f"reference-{pair}", model),
              "lensbook": load_lens(work / f"lensbook-{pair}", model)}
    frame = evaluate_lenses(model, lenses, held_out, batch_size=8)
    return pivot(frame, "kl").drop(columns="output", errors="ignore").dropna().to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=["tiny", "gpt2-small", "pythia-410m"], default="tiny")
    parser.add_argument("--model-dir", default=None, help="another local model for --case tiny")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 on cuda)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--tokens-per-step", type=int, default=2**13)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8, help="lensbook's chunks per forward")
    parser.add_argument("--ref-batch-size", type=int, default=None,
                        help="the reference's micro-batch (default --batch-size)")
    parser.add_argument("--lensbook-dtype", default="auto", help="lensbook's --dtype")
    parser.add_argument("--ref-precision", default=None,
                        help="the reference's --precision (default: its own; bf16 on cuda)")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved (reference, lensbook)")
    parser.add_argument("--eval-tokens", type=int, default=2**17)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS for both tools (default: all cores)")
    parser.add_argument("--label", default=None, help="name of the result files")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix=f"bench-{args.case}-"))
    model_dir = prepare_model(args.case, work, args.model_dir)
    _, tokenizer = load_model(str(model_dir))
    held_out = prepare_data(work, tokenizer, args.steps * args.tokens_per_step, args.seq_len,
                            args.eval_tokens)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                        "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    if args.threads:
        env |= {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    tokens = args.steps * (args.tokens_per_step // args.seq_len) * args.seq_len
    label = args.label or f"{args.case}-{args.device}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    for pair in range(args.pairs):  # interleaved: reference, lensbook, reference, …
        runs = {"reference": run_reference(args, model_dir, work, env, pair),
                "lensbook": run_lensbook(args, model_dir, work, env, pair)}
        for tool, result in runs.items():
            result["tokens_per_s"] = tokens / result["train_s"]
            (out / f"{label}-{tool}-{pair}.log").write_text(result.pop("log"))
        runs["held_out_kl"] = score(model_dir, work, held_out, args.device, pair)
        pairs.append(runs)
        print(f"pair {pair}: reference {runs['reference']['tokens_per_s']:.0f}, lensbook "
              f"{runs['lensbook']['tokens_per_s']:.0f} tokens/s", flush=True)
    results = {"args": vars(args), "machine": machine(), "pairs": pairs,
               "summary": summarise(pairs)}
    (out / f"{label}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))
    if not args.keep:
        shutil.rmtree(work)


def spread(values: list[float]) -> dict:
    """Median and range of some measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(pairs: list[dict]) -> dict:
    """Medians and ranges per tool, the per-pair throughput ratio, median KL per layer."""
    summary = {tool: {key: spread([p[tool][key] for p in pairs if p[tool][key] is not None])
                      for key in ("tokens_per_s", "train_s", "wall_s", "user_s", "sys_s",
                                  "peak_rss_mib")}
               for tool in ("reference", "lensbook")}
    summary["ratio_tokens_per_s"] = spread([p["lensbook"]["tokens_per_s"]
                                            / p["reference"]["tokens_per_s"] for p in pairs])
    kl = {}
    for lens in ("logit", "reference", "lensbook"):
        layers = zip(*[p["held_out_kl"][lens].values() for p in pairs], strict=True)
        kl[lens] = [statistics.median(values) for values in layers]
    kl["lensbook / reference"] = [a / b for a, b in zip(kl["lensbook"], kl["reference"],
                                                        strict=True)]
    summary["held_out_kl_median"] = kl
    return summary


def machine() -> dict:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = re.search(r"Model name:\s+(.*)", cpu)
    return {"cpu": name.group(1) if name else "?", "cores": os.cpu_count(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


if __name__ == "__main__":
    main()
