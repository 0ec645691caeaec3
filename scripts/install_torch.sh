#!/usr/bin/env bash
# Install PyTorch into an environment: scripts/install_torch.sh PYTHON REQUIREMENT [INDEX]
#
# INDEX says where the wheel comes from:
#   auto (default)  a CPU build that pip already finds without any index (a wheel on disk,
#                   as on lensbook's own machines and CI), else PyTorch's CPU wheel index;
#   a URL           that index (pip --index-url);
#   "" (empty)      pip's own configuration: on Linux, PyPI's torch is the CUDA build.
# TORCH_CPU_INDEX overrides the CPU index's address (tests point it at a local folder).
set -euo pipefail
py=$1
requirement=$2
index=${3-auto}
cpu_index=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

if [ "$index" = auto ]; then
  if "$py" -m pip install --dry-run --no-deps --no-index --ignore-installed "$requirement" \
      2>/dev/null | grep -q '^Would install torch-.*+cpu'; then
    index=""
    echo "install_torch: $requirement: using the CPU build pip finds on this machine"
  else
    index=$cpu_index
    echo "install_torch: $requirement: from the CPU wheel index $index"
  fi
elif [ -n "$index" ]; then
  echo "install_torch: $requirement: from $index"
else
  echo "install_torch: $requirement: from pip's configured indexes (on Linux: the CUDA build)"
fi
"$py" -m pip install -q "$requirement" ${index:+--index-url "$index"}
