#!/usr/bin/env bash
# Build the stand-in Hub, check that every online model, lens and data set loads from it,
# then run the notebooks (all, or those given) with their online profile against it.
# Usage: scripts/test_online.sh [PYTHON] [NOTEBOOK ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
shift || true
nice -n 10 "$PY" -m tests.hub_double.build
eval "$("$PY" -m tests.hub_double.env)"
"$PY" -m pytest tests/hub_double/checks.py -q -p no:cacheprovider
nice -n 10 "$PY" -m benchmarks.run_online --keep-going "$@"
