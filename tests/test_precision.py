"""dtype="auto": bf16 where the hardware multiplies bf16 natively, float32 elsewhere."""

import torch

from lensbook.training import precision
from lensbook.training.config import TrainConfig
from lensbook.training.optim import compute_dtype

SAPPHIRE_RAPIDS = frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
SKYLAKE = frozenset({"avx2", "avx512f", "avx512bw"})


def test_x86_needs_a_bf16_flag_and_torch_avx512_kernels():
    assert precision.native_cpu_bf16(SAPPHIRE_RAPIDS, "x86_64", "AVX512")
    assert precision.native_cpu_bf16(frozenset({"avx512_bf16"}), "AMD64", "AVX512")
    assert not precision.native_cpu_bf16(SKYLAKE, "x86_64", "AVX512")
    assert not precision.native_cpu_bf16(SAPPHIRE_RAPIDS, "x86_64", "AVX2")  # forced avx2
    assert not precision.native_cpu_bf16(frozenset(), "x86_64", "AVX512")


def test_arm_needs_its_bf16_feature():
    assert precision.native_cpu_bf16(frozenset({"asimd", "sve", "bf16"}), "aarch64")
    assert not precision.native_cpu_bf16(frozenset({"asimd"}), "aarch64")
    assert not precision.native_cpu_bf16(frozenset({"bf16"}), "riscv64")


def test_auto_follows_the_cpu_and_explicit_dtypes_win(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: True)
    assert compute_dtype(TrainConfig(), cpu) == torch.bfloat16
    assert compute_dtype(TrainConfig(dtype="float32"), cpu) == torch.float32
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: False)
    assert compute_dtype(TrainConfig(), cpu) == torch.float32
    assert precision.auto_dtype(torch.device("meta")) == torch.float32
    assert TrainConfig().dtype == "auto"


def test_this_machines_flags_are_read():
    flags = precision.cpu_flags()
    assert isinstance(flags, frozenset)
    if flags & precision.X86_BF16 and torch.backends.cpu.get_cpu_capability() == "AVX512":
        assert precision.auto_dtype(torch.device("cpu")) == torch.bfloat16


def _autocast_during_forward(dtype: str) -> list[bool]:
    from lensbook.training.loop import train_lens
    from tests.tiny_models import VOCAB, make_model

    model = make_model("gpt2")
    seen = []
    model.transformer.h[0].register_forward_pre_hook(
        lambda *_: seen.append(torch.is_autocast_enabled("cpu")))
    ids = torch.randint(1, VOCAB, (8, 16), generator=torch.Generator().manual_seed(0))
    train_lens(model, ids, TrainConfig(steps=1, tokens_per_step=64, seq_len=16, batch_size=4,
                                       dtype=dtype, progress=False))
    return seen


def test_the_base_forward_runs_under_cpu_autocast_in_bf16_only():
    in_bf16 = _autocast_during_forward("bfloat16")
    assert in_bf16 and all(in_bf16)
    assert not any(_autocast_during_forward("float32"))
