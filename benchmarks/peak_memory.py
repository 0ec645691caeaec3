"""Run a Python module as ``python -m MODULE ARGS``; report peak CUDA memory and RSS at exit.

Usage: python benchmarks/peak_memory.py MODULE [ARGS...]

Works in any environment with torch (lensbook's and the reference's), so both tools
are measured the same way; peak RSS comes from ``/usr/bin/time -v`` around this.
"""

import atexit
import resource
import runpy
import sys

import torch


def _report():
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"PEAK_RSS_MIB {rss_kib / 1024:.1f}", flush=True)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak = torch.cuda.max_memory_allocated() / 2**20
        print(f"PEAK_CUDA_MIB {peak:.1f}", flush=True)


if __name__ == "__main__":
    module, sys.argv = sys.argv[1], sys.argv[1:]
    atexit.register(_report)
    runpy.run_module(module, run_name="__main__", alter_sys=True)
