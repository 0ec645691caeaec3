#!/usr/bin/env bash
# Train tuned lenses with the reference tuned-lens 0.2.0 and with lensbook, one after the other,
# on the same model, text, chunk length and token budget; score both with lensbook's evaluator.
# Usage (from anywhere, after `make setup`):
#   bash benchmarks/compare_reference.sh          # CPU: lensbook-tiny, then a GPT-2-small-shaped model
#   bash benchmarks/compare_reference.sh cuda     # the same on one CUDA GPU, bf16 (needs TORCH=torch)
# Results: benchmarks/results/<case>-<device>.json and .log files; summary in benchmarks/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${1:-cpu}
REF=${REF_VENV:-.venv-ref}
if [ ! -x "$REF/bin/python" ]; then  # the reference needs old packages: its own venv
  python3 -m venv "$REF"
  "$REF/bin/pip" install -q torch==2.13.0
  "$REF/bin/pip" install -q tuned-lens==0.2.0 torchdata==0.9.0 transformers==4.57.6 \
    "datasets<5" "huggingface-hub<1"
fi
export HF_HUB_OFFLINE=1 REF_VENV=$REF
PY=.venv/bin/python
# The embedded model with the `quick` budget: 150 steps x 4,096 tokens, chunks of 256 (614k tokens).
# --threads 1 (OMP_NUM_THREADS for both tools): the 2 cores are shared, and 2 OpenMP threads
# competing with other jobs made timings erratic.
$PY benchmarks/bench_train.py --case tiny --device "$DEVICE" --threads 1 --steps 150 --tokens-per-step 4096 \
  --seq-len 256 --batch-size 8 --eval-tokens 65536
# GPT-2-small's shape (12 x 768, vocab 50,257), random weights: a throughput/memory case.
if [ "$DEVICE" = cpu ]; then
  $PY benchmarks/bench_train.py --case gpt2-small --device cpu --threads 1 --steps 2 --tokens-per-step 1024 \
    --seq-len 256 --batch-size 4 --eval-tokens 2048
else
  $PY benchmarks/bench_train.py --case gpt2-small --device "$DEVICE" --steps 50 \
    --tokens-per-step 65536 --seq-len 1024 --batch-size 8 --eval-tokens 262144
fi
