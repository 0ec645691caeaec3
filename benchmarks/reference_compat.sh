#!/usr/bin/env bash
# Show that lens files round-trip between lensbook and the reference package tuned-lens 0.2.0.
# Usage: bash benchmarks/reference_compat.sh   (from the repository root, after `make setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
REF=${REF_VENV:-.venv-ref}
if [ ! -x "$REF/bin/python" ]; then
  python3 -m venv "$REF"
  "$REF/bin/pip" install -q torch==2.13.0
  "$REF/bin/pip" install -q tuned-lens==0.2.0 torchdata==0.9.0 transformers==4.57.6 \
    "datasets<5" "huggingface-hub<1"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1
.venv/bin/python benchmarks/reference_compat.py make "$work"
"$REF/bin/python" benchmarks/reference_compat.py ref "$work"
.venv/bin/python benchmarks/reference_compat.py check "$work"
