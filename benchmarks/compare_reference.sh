#!/usr/bin/env bash
# Train tuned lenses with the reference tuned-lens 0.2.0 and with lensbook, one after the other,
# on the same model, text, chunk length and token budget; score both with lensbook's evaluator.
# Usage (from anywhere, after `make setup`):
#   bash benchmarks/compare_reference.sh          # CPU: lensbook-tiny, GPT-2-small and Pythia-410M shapes
#   bash benchmarks/compare_reference.sh cuda     # the same on one CUDA GPU, bf16 (needs TORCH=torch)
# Results: benchmarks/results/<label>.json (medians, ranges) and <label>-<tool>-<pair>.log files.
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
PAIRS=${PAIRS:-3}
# Interleaved pairs (reference, then lensbook; seeds 42, 43, 44), medians and ranges; --threads 1
# (OMP_NUM_THREADS for both tools): timings on shared cores are noisy, run on a quiet machine.
# For each case: the reference at micro-batch 4 and 8 (the same update), default vs default
# dtypes (on a CPU with native bf16 that is like for like: both models float32, both lenses
# in bf16), both models and lenses in bf16, and lensbook in float32. The reference always
# runs its lens under bf16 autocast (its --precision sets only the model's dtype), so the
# float32 rows compare lensbook in float32 with the reference's bf16 lens (see bench_train.py).
bench() {  # bench CASE LABEL ARGS...
  local case=$1 label=$2; shift 2
  $PY benchmarks/bench_train.py --case "$case" --device "$DEVICE" --pairs "$PAIRS" \
    --label "$label" "$@"
}
if [ "$DEVICE" = cpu ]; then
  # lensbook-tiny with the `quick` budget: 150 steps x 4,096 tokens, chunks of 256.
  TINY=(--threads 1 --steps 150 --tokens-per-step 4096 --seq-len 256 --batch-size 8
        --eval-tokens 65536)
  # GPT-2-small's and Pythia-410M's shapes (random weights): throughput and memory.
  SMALL=(--threads 1 --steps 3 --tokens-per-step 1024 --seq-len 256 --batch-size 4
         --eval-tokens 2048)
  for mb in 4 8; do
    bench tiny "tiny-cpu-rb$mb-default" "${TINY[@]}" --ref-batch-size $mb
    bench gpt2-small "gpt2-small-cpu-rb$mb-default" "${SMALL[@]}" --ref-batch-size $mb
    bench pythia-410m "pythia-410m-cpu-rb$mb-default" "${SMALL[@]}" --ref-batch-size $mb
  done
  for dtype in float32 bfloat16; do
    bench tiny "tiny-cpu-rb4-$dtype" "${TINY[@]}" --ref-batch-size 4 \
      --lensbook-dtype $dtype --ref-precision $dtype
    bench gpt2-small "gpt2-small-cpu-rb4-$dtype" "${SMALL[@]}" --ref-batch-size 4 \
      --lensbook-dtype $dtype --ref-precision $dtype
  done
else
  bench tiny tiny-cuda --steps 150 --tokens-per-step 4096 --seq-len 256 --batch-size 8 \
    --eval-tokens 65536
  bench gpt2-small gpt2-small-cuda --steps 50 --tokens-per-step 65536 --seq-len 1024 \
    --batch-size 8 --eval-tokens 262144
fi
