#!/usr/bin/env bash
# GPU check (issue 18): a quick-preset lens on the GPT-2-small shape on CUDA in bf16; its
# held-out KL against CPU and CUDA float32 runs of the same data; tokens/s against the
# reference tuned-lens 0.2.0 on the same GPU; peak GPU memory. About 3-4 minutes on one H200.
# Usage (repository root):
#   bash benchmarks/gpu_check.sh                      # on a GPU machine
#   bash benchmarks/gpu_check.sh --device cpu --tiny  # rehearsal on a CPU, about a minute
# Results: $OUT (default benchmarks/results/gpu): gpu_check.json, summary.txt, runs.log.
#
# Packages missing on the GPU machine travel as wheels in .whl/ (ignored by git; see
# /work/.library/device/README.md): .whl/*.whl are lensbook's (datasets, dill,
# multiprocess) and go to /tmp/site; .whl/ref/*.whl are the reference's (tuned-lens 0.2.0,
# transformers 4.57.6, huggingface-hub<1, torchdata 0.9, tokenizers 0.22, simple-parsing)
# and go to /tmp/site-ref, seen only by the reference's process.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
export OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
install() {  # install() TARGET WHEELS...
  local target=$1; shift
  [ -d "$target" ] || "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --target "$target" "$@"
}
if compgen -G ".whl/*.whl" >/dev/null; then
  install /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
ARGS=()
if compgen -G ".whl/ref/*.whl" >/dev/null; then
  install /tmp/site-ref .whl/ref/*.whl
  ARGS+=(--ref-site /tmp/site-ref)
elif [ -x .venv-ref/bin/python ]; then  # this project's reference venv (benchmarks/compare_reference.sh)
  ARGS+=(--ref-python .venv-ref/bin/python)
elif ! "$PY" -c "import tuned_lens" 2>/dev/null; then
  echo "gpu_check: no reference tuned-lens found; skipping it" >&2
  ARGS+=(--no-reference)
fi
"$PY" - <<'EOF'  # lensbook must import without ipywidgets (and with what is installed)
import sys, lensbook
assert "ipywidgets" not in sys.modules, "lensbook imported ipywidgets at import time"
print(f"lensbook {lensbook.__file__}; python {sys.version.split()[0]}")
EOF
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
export PYTHONUNBUFFERED=1
"$PY" benchmarks/gpu_check.py "${ARGS[@]}" "$@" 2>&1 | tee "$OUT/output.log"
