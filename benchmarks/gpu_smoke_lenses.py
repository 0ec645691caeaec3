"""CUDA check of the lens types of issue 14 on the GPT-2-small shape (random weights).

Fits a Jacobian lens, trains tuned lenses with SGD and Muon (residual and sub-layer read
points) in bf16 on CUDA, evaluates them against the logit lens, and checks that the
identity J-lens equals the logit lens on CUDA. Writes ``$OUT/gpu_smoke_lenses.json``.
Usage: python benchmarks/gpu_smoke_lenses.py  (about a minute on one H200)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
import transformers as tf

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
from lensbook import LogitLens, TrainConfig, TunedLens, evaluate_lenses, train_lens  # noqa: E402
from lensbook.core.jacobian import JacobianLens  # noqa: E402
from lensbook.core.run import layer_logits  # noqa: E402


def model_and_data(device: str) -> tuple[tf.PreTrainedModel, torch.Tensor, torch.Tensor]:
    """GPT-2 small's shape, random weights; random-token train and held-out chunks."""
    torch.manual_seed(0)
    config = tf.GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=256)
    model = tf.GPT2LMHeadModel(config).to(device).eval()
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 50257, (160 + 32, 128), generator=gen)
    return model, ids[:160], ids[160:]


def timed(label: str, fn, results: dict):
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    results["seconds"][label] = round(time.perf_counter() - start, 2)
    print(f"{label}: {results['seconds'][label]} s", flush=True)
    return out


def main() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results: dict = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                     "torch": torch.__version__, "seconds": {}}
    model, train, held = model_and_data(device)
    ident = JacobianLens.from_model(model)
    exact = torch.equal(layer_logits(model, ident, held[:2].to(device)),
                        layer_logits(model, LogitLens.from_model(model), held[:2].to(device)))
    results["identity_jlens_equals_logit_lens"] = exact
    jlens = timed("jlens fit (16 prompts x 128)",
                  lambda: JacobianLens.fit(model, train[:16].to(device), tol=None,
                                           max_prompts=16, progress=False), results)
    results["jlens_finite"] = bool(torch.isfinite(jlens.state()[next(iter(jlens.state()))]).all())
    lenses = {"logit lens": LogitLens.from_model(model), "jacobian lens": jlens}
    for opt in ("sgd", "muon"):
        cfg = TrainConfig(steps=20, tokens_per_step=1024, seq_len=128, batch_size=8,
                          optimizer=opt, dtype="bfloat16", progress=False)
        lenses[f"tuned ({opt})"] = timed(f"train {opt} bf16 20 steps",
                                         lambda c=cfg: train_lens(model, train, c)[0], results)
    sub_cfg = TrainConfig(steps=20, tokens_per_step=1024, seq_len=128, batch_size=8,
                          optimizer="muon", dtype="bfloat16", progress=False)
    sub = timed("train muon sub-layers", lambda: train_lens(
        model, train, sub_cfg, TunedLens.from_model(model, sublayers=True))[0], results)
    frame = timed("evaluate", lambda: evaluate_lenses(model, lenses, held), results)
    sub_frame = evaluate_lenses(model, {"logit (sub)": LogitLens.from_model(model, sublayers=True),
                                        "tuned muon (sub)": sub}, held)
    kl, sub_kl = (f[(f["metric"] == "kl") & (f["unit"] == "nats/token")]
                  .groupby("lens")["value"].mean() for f in (frame, sub_frame))
    results["mean_kl"] = {**kl.round(4).to_dict(), **sub_kl.round(4).to_dict()}
    results["peak_cuda_mib"] = (round(torch.cuda.max_memory_allocated() / 2**20)
                                if device == "cuda" else None)
    print(json.dumps(results, indent=1))
    out = Path(os.environ.get("OUT", "benchmarks/results/gpu"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_smoke_lenses.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
