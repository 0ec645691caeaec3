"""The dtype of the lens's unembedding matmuls when ``dtype="auto"`` (the default).

The two ``(tokens, d) x (d, vocab)`` matmuls per layer are nearly all of a training
step's work. bf16 halves their memory traffic and, on hardware that multiplies bf16
natively, runs them 2-8x faster than float32: every CUDA GPU since Ampere, and CPUs
with AVX512-BF16 or AMX (Intel Cooper Lake and Sapphire Rapids onwards, AMD Zen 4
onwards) or Arm's BF16 extension (Neoverse V1/N2, Graviton 3). Elsewhere bf16 is
emulated and slower than float32, so ``"auto"`` keeps float32 there. Softmax, KL and
the gradients stay float32 in every case (:mod:`lensbook.training.objective`).

Example:
    >>> auto_dtype(torch.device("cpu"))  # on a Sapphire Rapids Xeon  # doctest: +SKIP
    torch.bfloat16
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

import torch

# /proc/cpuinfo flags of native bf16 matrix instructions: x86 (AVX512-BF16, AMX) and Arm.
X86_BF16 = frozenset({"avx512_bf16", "amx_bf16"})
ARM_BF16 = frozenset({"bf16"})


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_cpu_bf16(flags: frozenset[str] | None = None, machine: str | None = None,
                    capability: str | None = None) -> bool:
    """Whether this CPU multiplies bf16 matrices natively.

    Args:
        flags: CPU flags (default :func:`cpu_flags`).
        machine: ``platform.machine()`` (default this machine's).
        capability: ``torch.backends.cpu.get_cpu_capability()`` (default torch's): on
            x86 torch must use its AVX512 kernels (not ``ATEN_CPU_CAPABILITY=avx2``).
    """
    flags = cpu_flags() if flags is None else flags
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64"):
        capability = capability or torch.backends.cpu.get_cpu_capability()
        return bool(flags & X86_BF16) and capability.upper().startswith("AVX512")
    if machine in ("aarch64", "arm64"):
        return bool(flags & ARM_BF16)
    return False


def auto_dtype(device: torch.device) -> torch.dtype:
    """bf16 (fp16 on GPUs without bf16) on CUDA, bf16 on CPUs with native bf16, else fp32."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and native_cpu_bf16():
        return torch.bfloat16
    return torch.float32
