"""Memory at a 128k vocabulary: a Llama-3-8B-shaped model cut to 2 layers, in bf16.

Training a few steps and evaluating must hold no copy of the 1 GiB output head and no
full-vocabulary logits beyond the configured block: the growth of peak RSS over the
loaded model stays within the printed estimate (lens, gradients, momentum, one forward
batch, ``LOGIT_BUFFERS`` blocks of ``chunk_mb``) plus a fixed allowance for the
allocator and the libraries. Measured in a fresh process (``python -m
tests.test_memory_128k`` prints the numbers), with the kernel's peak-RSS mark reset
after the model is built (``/proc/self/clear_refs``).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers as tf

from lensbook import LogitLens, TunedLens
from lensbook.analysis.evaluate import evaluate_lenses, evaluation_memory
from lensbook.training.config import TrainConfig
from lensbook.training.loop import train_lens, training_memory

ROOT = Path(__file__).resolve().parent.parent
MiB = 2**20
# Allocator arenas, oneDNN's kernels and autograd's small temporaries; far below the
# 1 GiB a copy of the head would take.
ALLOWANCE = 300 * MiB
CHUNK_MB = 16.0  # 32 tokens x 128,256 x 4 bytes per block
CONFIG = TrainConfig(steps=1, tokens_per_step=256, seq_len=64, batch_size=4, chunk_mb=CHUNK_MB,
                     dtype="bfloat16", progress=False)


def llama3_8b_shape() -> tf.PreTrainedModel:
    """Llama-3-8B's widths (d 4096, MLP 14336, GQA 32/8, vocab 128,256), 2 layers, bf16.

    Built on the meta device and filled with a tiled random block: the usual random
    initialisation of 1.5B weights takes minutes on one core.
    """
    config = tf.LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=2,
                            num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                            tie_word_embeddings=False, max_position_embeddings=1024,
                            rope_theta=500000.0)
    with torch.device("meta"):
        model = tf.LlamaForCausalLM(config).to(torch.bfloat16)
    model = model.to_empty(device="cpu")
    block = (torch.randn(1_000_003, generator=torch.Generator().manual_seed(0)) * 0.02)
    block = block.to(torch.bfloat16)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0)
                continue
            flat = p.view(-1)
            for start in range(0, flat.numel(), block.numel()):
                piece = flat[start:start + block.numel()]
                piece.copy_(block[:piece.numel()])
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)
    return model.eval()


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> int:
    Path("/proc/self/clear_refs").write_text("5")
    return _rss("VmRSS")


def measure() -> dict:
    """Peak RSS growth of training and of evaluation, with their estimates (bytes)."""
    torch.set_num_threads(1)
    model = llama3_8b_shape()
    ids = torch.randint(1, 128256, (4, CONFIG.seq_len), generator=torch.Generator().manual_seed(1))
    out = {"model_rss": _reset_peak()}
    lens = TunedLens.from_model(model)
    estimate = training_memory(model, lens, CONFIG)
    train_lens(model, ids, CONFIG, lens)
    out["train_growth"] = _rss("VmHWM") - out["model_rss"]
    out["train_estimate"] = estimate.total - estimate.parts["model"]
    out["train_line"] = str(estimate)
    start = _reset_peak()
    lenses = {"logit": LogitLens.from_model(model), "tuned": lens}
    estimate = evaluation_memory(model, lenses, CONFIG.seq_len, batch_size=4, chunk_mb=CHUNK_MB)
    frame = evaluate_lenses(model, lenses, ids, batch_size=4, chunk_mb=CHUNK_MB)
    out["eval_growth"] = _rss("VmHWM") - start
    out["eval_estimate"] = estimate.total - estimate.parts["model"]
    out["eval_line"] = str(estimate)
    out["finite"] = bool(frame["value"].notna().all())
    out["head_shared"] = lens.unembed.weight.data_ptr() == model.lm_head.weight.data_ptr()
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc")
def test_training_and_evaluation_hold_no_more_than_the_logits_block():
    done = subprocess.run([sys.executable, "-m", "tests.test_memory_128k"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["head_shared"] and result["finite"]
    # A copy of the head alone (1 GiB in bf16) would break these bounds.
    assert result["train_growth"] <= result["train_estimate"] + ALLOWANCE, result
    assert result["eval_growth"] <= result["eval_estimate"] + ALLOWANCE, result


if __name__ == "__main__":
    print(json.dumps(measure()))
