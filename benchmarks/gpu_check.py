"""GPU check: a quick-preset lens on the GPT-2-small shape on CUDA in bf16, checked and timed.

Four questions, answered in one run of a few minutes on one GPU
(``bash benchmarks/gpu_check.sh``; ``--device cpu --tiny`` rehearses it on a CPU):

1. **Accuracy of bf16.** The same short run (same data, seed and chunk order) trained
   three ways: on the CPU in float32 (the reference result), on the device in float32
   and on the device in bf16 (model and unembedding matmuls; softmax, KL and gradients
   stay float32). All lenses are scored on the same held-out chunks, on the device in
   float32; the table gives each layer's KL and the relative difference to the CPU's.
2. **Throughput.** The ``quick`` preset (150 steps x 4,096 tokens, chunks of 256,
   micro-batch 8) with lensbook in bf16 and with the reference ``tuned-lens`` 0.2.0
   (``--precision bfloat16``) on the same GPU, one after the other: tokens/s of each
   training loop, and their held-out KL.
3. **Memory.** Peak GPU memory (``torch.cuda.max_memory_allocated``) and peak RSS of
   every training process (``benchmarks/peak_memory.py``).
4. **It runs**: lensbook with the installed torch and transformers, without a Hub.

The model has GPT-2-small's shape (12 layers, d 768, vocab 50,257) with random
weights and lensbook-tiny's tokenizer (no Hub on a GPU machine); the text is the
embedded corpus. Results land in ``--out`` (default ``$OUT`` or
``benchmarks/results/gpu``): ``gpu_check.json``, ``summary.txt`` and ``runs.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers as tf

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]
from lensbook import LogitLens, load_lens, load_model  # noqa: E402
from lensbook.analysis.evaluate import evaluate_lenses, pivot  # noqa: E402
from lensbook.embedded.corpus import load_corpus  # noqa: E402
from lensbook.training.data import chunk_texts  # noqa: E402

PEAK = str(ROOT / "benchmarks" / "peak_memory.py")
SHAPES = {"gpt2-small": dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257),
          "tiny": dict(n_layer=2, n_embd=64, n_head=2, vocab_size=4096)}


def build_model(folder: Path, shape: str) -> Path:
    """A GPT-2 of the given shape with random weights and lensbook-tiny's tokenizer."""
    _, tokenizer = load_model("lensbook-tiny")
    eos = tokenizer.eos_token_id
    config = tf.GPT2Config(**SHAPES[shape], n_positions=1024, bos_token_id=eos,
                           eos_token_id=eos)
    torch.manual_seed(0)
    target = folder / "model"
    tf.GPT2LMHeadModel(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    # The reference's transformers 4.57 cannot read transformers 5's tokenizer class name.
    path = target / "tokenizer_config.json"
    path.write_text(json.dumps(json.loads(path.read_text())
                               | {"tokenizer_class": "PreTrainedTokenizerFast"}))
    return target


def write_text(folder: Path, tokenizer, tokens: int) -> Path:
    """Corpus training documents as ``train.jsonl``, at least ``tokens`` tokens."""
    rows, n = [], 0
    for text in load_corpus("train")["text"]:
        rows.append(json.dumps({"text": text}))
        n += len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1
        if n >= tokens:
            break
    path = folder / "train.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def run(cmd: list[str], env: dict, log) -> dict:
    """Run a training command; its wall time, log text, peak CUDA memory and RSS."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    text = done.stdout + done.stderr
    log.write(f"\n$ {' '.join(cmd)}\n{text}\n[exit {done.returncode}, {wall:.1f} s]\n")
    log.flush()
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{text[-3000:]}")
    cuda = re.search(r"PEAK_CUDA_MIB ([\d.]+)", text)
    rss = re.search(r"PEAK_RSS_MIB ([\d.]+)", text)
    return {"wall_s": wall, "log": text, "peak_cuda_mib": float(cuda.group(1)) if cuda else None,
            "peak_rss_mib": float(rss.group(1)) if rss else None}


def lensbook_cmd(model: Path, data: Path, out: Path, device: str, dtype: str, steps: int,
                 micro_batch: int) -> list[str]:
    cmd = [sys.executable, PEAK, "lensbook", "train", "--model", str(model), "--data", str(data),
           "--preset", "quick", "--steps", str(steps), "--batch-size", str(micro_batch),
           "--seed", "42", "--eval-tokens", "0", "--no-progress", "--output", str(out),
           "--device", device, "--dtype", dtype]
    return cmd + (["--model-dtype", dtype] if dtype != "float32" else [])


def train_lensbook(name: str, args, paths: dict, device: str, dtype: str, steps: int,
                   env: dict, log) -> dict:
    out = paths["work"] / name
    cmd = lensbook_cmd(paths["model"], paths["data"], out, device, dtype, steps, args.micro_batch)
    result = run(cmd, env | ({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {}), log)
    found = re.search(r"trained (\d+) tokens in ([\d.]+) s", result.pop("log"))
    tokens, seconds = int(found.group(1)), float(found.group(2))
    return result | {"tool": "lensbook", "device": device, "dtype": dtype, "steps": steps,
                     "tokens": tokens, "train_s": seconds, "tokens_per_s": tokens / seconds,
                     "folder": str(out)}


def train_reference(args, paths: dict, steps: int, env: dict, log) -> dict:
    out = paths["work"] / "reference"
    python = [args.ref_python] if args.ref_python else [sys.executable]
    cmd = [*python, PEAK, "tuned_lens", "train", "--model.name", str(paths["model"]),
           "--data.name", str(paths["data"]), "--max_length", "256", "--num_steps", str(steps),
           "--tokens_per_step", "4096", "--per_gpu_batch_size", str(args.micro_batch),
           "--seed", "42", "--output", str(out)]
    if args.device == "cuda":
        cmd += ["--precision", "bfloat16"]
    ref_env = env | {"HF_DATASETS_CACHE": str(paths["work"] / "ref-cache"),
                     "PYTHONPATH": os.pathsep.join(filter(None, [args.ref_site,
                                                                 env.get("PYTHONPATH")]))}
    result = run(cmd, ref_env, log)
    bars = re.findall(r"Training:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+) \[(?:(\d+):)?(\d+):(\d+)<",
                      result.pop("log"))
    done, total, h, m, s = bars[-1]
    if done != total:
        raise SystemExit(f"the reference stopped early at batch {done} of {total}")
    seconds = max(1, 3600 * int(h or 0) + 60 * int(m) + int(s))  # tqdm gives whole seconds
    tokens = steps * 4096
    return result | {"tool": "tuned-lens 0.2.0", "device": args.device, "dtype": "bfloat16",
                     "steps": steps, "tokens": tokens, "train_s": seconds,
                     "tokens_per_s": tokens / seconds, "folder": str(out)}


def score(paths: dict, runs: dict, device: str, eval_tokens: int) -> dict:
    """Held-out KL per layer of every trained lens, on ``device`` in float32."""
    model, tokenizer = load_model(str(paths["model"]), device=device)
    held_out = chunk_texts(load_corpus("test"), tokenizer, 256, max_tokens=eval_tokens)
    lenses = {"logit lens": LogitLens.from_model(model)}
    lenses |= {name: load_lens(Path(r["folder"]), model) for name, r in runs.items()}
    frame = evaluate_lenses(model, lenses, held_out, batch_size=8)
    table = pivot(frame, "kl").drop(columns="output", errors="ignore").dropna()
    return {name: [float(v) for v in table[name]] for name in table.columns}


def relative(kl: dict, name: str, base: str) -> list[float]:
    return [a / b - 1 for a, b in zip(kl[name], kl[base], strict=True)]


def summarise(results: dict) -> str:
    kl, runs = results["held_out_kl"], results["runs"]
    lines = [f"device: {results['machine']['device']}; torch {results['machine']['torch']}, "
             f"transformers {results['machine']['transformers']}; shape {results['shape']}", "",
             f"{'run':<22}{'tokens/s':>12}{'train s':>9}{'peak GPU MiB':>14}{'peak RSS MiB':>14}"]
    for name, r in runs.items():
        cuda = f"{r['peak_cuda_mib']:.0f}" if r["peak_cuda_mib"] is not None else "-"
        rss = f"{r['peak_rss_mib']:.0f}" if r["peak_rss_mib"] is not None else "-"
        lines.append(f"{name:<22}{r['tokens_per_s']:>12,.0f}{r['train_s']:>9.1f}{cuda:>14}{rss:>14}")
    if "reference-quick" in runs:
        ratio = runs["bf16-quick"]["tokens_per_s"] / runs["reference-quick"]["tokens_per_s"]
        lines.append(f"lensbook bf16 / reference bf16 tokens/s: {ratio:.2f}x")
    lines += ["", "held-out KL (nats/token) per layer:"]
    for name, values in kl.items():
        lines.append(f"  {name:<20}" + " ".join(f"{v:7.4f}" for v in values))
    for name, base in results["comparisons"]:
        diffs = relative(kl, name, base)
        lines.append(f"  {name} vs {base}: max |rel diff| {max(map(abs, diffs)):.2%} "
                     f"(per layer: {' '.join(f'{d:+.2%}' for d in diffs)})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a rehearsal)")
    parser.add_argument("--tiny", action="store_true", help="a tiny model: a one-minute rehearsal")
    parser.add_argument("--steps", type=int, default=150, help="steps of the quick runs")
    parser.add_argument("--short-steps", type=int, default=3,
                        help="steps of the CPU-vs-device accuracy runs (default 3)")
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--eval-tokens", type=int, default=2**15)
    parser.add_argument("--ref-site", default=os.environ.get("REF_SITE"),
                        help="folder with the reference's packages (prepended to PYTHONPATH)")
    parser.add_argument("--ref-python", default=os.environ.get("REF_PYTHON"),
                        help="python of the reference (default: this one)")
    parser.add_argument("--no-reference", action="store_true", help="skip tuned-lens 0.2.0")
    parser.add_argument("--out", default=os.environ.get("OUT") or "benchmarks/results/gpu")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shape = "tiny" if args.tiny else "gpt2-small"
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    clock = time.perf_counter()
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                        "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
                        "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"),
                                                                    str(ROOT)]))}
    paths = {"work": work, "model": build_model(work, shape)}
    _, tokenizer = load_model(str(paths["model"]))
    paths["data"] = write_text(work, tokenizer, int(1.2 * args.steps * 4096))
    print(f"model and text ready ({time.perf_counter() - clock:.0f} s)", flush=True)
    results = {"shape": shape, "args": vars(args), "machine": machine(args.device), "runs": {}}
    runs = results["runs"]
    with open(out / "runs.log", "w") as log:
        plan = [("fp32-short-cpu", "cpu", "float32", args.short_steps),
                (f"fp32-short-{args.device}", args.device, "float32", args.short_steps),
                (f"bf16-short-{args.device}", args.device, "bfloat16", args.short_steps),
                ("bf16-quick", args.device, "bfloat16", args.steps)]
        for name, device, dtype, steps in plan:
            if name in runs:  # --device cpu: the CPU fp32 run is already there
                continue
            runs[name] = train_lensbook(name, args, paths, device, dtype, steps, env, log)
            print(f"{name}: {runs[name]['tokens_per_s']:,.0f} tokens/s "
                  f"({time.perf_counter() - clock:.0f} s)", flush=True)
        if not args.no_reference:
            runs["reference-quick"] = train_reference(args, paths, args.steps, env, log)
            print(f"reference-quick: {runs['reference-quick']['tokens_per_s']:,.0f} tokens/s "
                  f"({time.perf_counter() - clock:.0f} s)", flush=True)
    results["held_out_kl"] = score(paths, runs, args.device, args.eval_tokens)
    short = [n for n in runs if "short" in n and n != "fp32-short-cpu"]
    results["comparisons"] = [(n, "fp32-short-cpu") for n in short]
    if "reference-quick" in runs:
        results["comparisons"].append(("bf16-quick", "reference-quick"))
    results["seconds"] = time.perf_counter() - clock
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    summary = summarise(results) + f"\n\nwhole check: {results['seconds']:.0f} s"
    (out / "summary.txt").write_text(summary + "\n")
    print(summary)
    shutil.rmtree(work, ignore_errors=True)


def machine(device: str) -> dict:
    gpu = torch.cuda.get_device_name() if device == "cuda" and torch.cuda.is_available() else None
    return {"device": gpu or f"cpu ({os.cpu_count()} cores)", "torch": torch.__version__,
            "transformers": tf.__version__, "python": sys.version.split()[0]}


if __name__ == "__main__":
    main()
