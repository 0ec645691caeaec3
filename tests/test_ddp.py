"""Data-parallel training on the CPU: 2 gloo processes give the same lens as one process.

The processes talk over the loopback interface only (``GLOO_SOCKET_IFNAME=lo``: by default
gloo connects through the address the host name resolves to, which a sandbox may block),
and every wait is bounded, so a machine that cannot run them fails or skips in minutes
instead of hanging the test run. Each process records how far it got (marker files) and,
if it is still running near the deadline, writes every thread's Python stack and exits;
the outcome names the phase and the innermost frames of each process.
"""

import faulthandler
import os
import re
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lensbook.training import distributed
from lensbook.training.config import TrainConfig
from lensbook.training.loop import train_lens
from tests.tiny_models import VOCAB, make_model

SEQ = 16
CONNECT = timedelta(seconds=60)  # for the processes to find each other, and per collective
DEADLINE_S = 240  # for the whole two-process run
DUMP_S = DEADLINE_S - 30  # a process still running then writes its stacks and exits
PHASES = ("started", "connected", "trained", "saved")
CONFIG = dict(steps=4, tokens_per_step=6 * SEQ, seq_len=SEQ, batch_size=2, progress=False)


def _ids():
    return torch.randint(1, VOCAB, (64, SEQ), generator=torch.Generator().manual_seed(0))


def _file(out: Path, rank: int, name: str) -> Path:
    """A file of ``rank`` in the test's folder: a phase marker, its stacks or its result."""
    return out / f"rank{rank}.{name}"


def _mark(out: Path, rank: int, phase: str) -> None:
    _file(out, rank, phase).touch()


def _stack(out: Path, rank: int) -> str:
    """``rank``'s stack dump ("" if it wrote none)."""
    path = _file(out, rank, "stack")
    return path.read_text() if path.exists() else ""


def _worker(rank, world_size, port, out_dir):
    out = Path(out_dir)
    stacks = open(_file(out, rank, "stack"), "w")  # noqa: SIM115 (open until os._exit)
    faulthandler.dump_traceback_later(DUMP_S, exit=True, file=stacks)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    _mark(out, rank, "started")
    info = distributed.init_from_env("gloo", timeout=CONNECT)
    assert (info.rank, info.world_size) == (rank, world_size)
    dist.barrier()
    _mark(out, rank, "connected")
    probe = distributed.GradientSync([torch.nn.Parameter(torch.zeros(2))], info)
    assert isinstance(probe.ddp, torch.nn.parallel.DistributedDataParallel)
    lens, history = train_lens(make_model("gpt2"), _ids(), TrainConfig(**CONFIG))
    _mark(out, rank, "trained")
    torch.save({"state": lens.translators.state_dict(), "loss": history.loss},
               _file(out, rank, "pt"))
    _mark(out, rank, "saved")
    # Everything to check is on disk: leave without tearing the process group down
    # (gloo's teardown can hang, pytorch/pytorch#75097, and lensbook never calls it).
    faulthandler.cancel_dump_traceback_later()
    os._exit(0)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _phase(out_dir: Path, rank: int) -> str:
    """The last phase that ``rank`` reached (``"not started"`` if none)."""
    reached = [p for p in PHASES if _file(out_dir, rank, p).exists()]
    return reached[-1] if reached else "not started"


def _innermost_frames(out_dir: Path, rank: int, count: int = 4) -> str:
    """Each thread's innermost frames from ``rank``'s stack dump, on one line."""
    summaries = []
    for thread in filter(str.strip, _stack(out_dir, rank).split("\n\n")):
        frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', thread)
        summaries.append(" < ".join(f"{Path(f).name}:{line} {name}"
                                    for f, line, name in frames[:count]))
    return " | ".join(summaries) or "no stack written"


def _report(out_dir: Path) -> str:
    return "; ".join(f"rank {r} reached '{_phase(out_dir, r)}', stack: "
                     f"{_innermost_frames(out_dir, r)}" for r in range(2))


def _run_two_processes(out_dir: Path) -> None:
    """Run both ranks; skip if they cannot connect, or stall with no error once connected.

    A process that raises fails the test (a collective that waits longer than
    ``CONNECT`` raises too); so do wrong results, checked by the caller.
    """
    context = mp.start_processes(_worker, args=(2, _free_port(), str(out_dir)), nprocs=2,
                                 join=False, start_method="spawn")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not context.join(timeout=5):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                raise TimeoutError(f"timed out after {DEADLINE_S} s")
    except mp.ProcessRaisedException as error:
        connected = sum(_file(out_dir, r, "connected").exists() for r in range(2))
        if connected < 2 and "timed out" in str(error).lower():
            pytest.skip(f"2 gloo processes could not connect over loopback on this machine "
                        f"({connected} of 2 did): {str(error).strip().splitlines()[-1]}")
        raise
    except (TimeoutError, mp.ProcessExitedException) as error:
        dumped = any(_stack(out_dir, r) for r in range(2))
        if isinstance(error, mp.ProcessExitedException) and not dumped:
            raise  # died (a signal, an exit code) rather than stalled
        pytest.skip(f"the 2 gloo processes stalled without an error ({error}): "
                    f"{_report(out_dir)}")


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    _run_two_processes(tmp_path)
    single, history = train_lens(make_model("gpt2"), _ids(), TrainConfig(**CONFIG))
    ranks = [torch.load(_file(tmp_path, r, "pt"), weights_only=True) for r in range(2)]
    for key, value in single.translators.state_dict().items():
        for saved in ranks:
            torch.testing.assert_close(saved["state"][key], value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(ranks[0]["loss"]), torch.tensor(history.loss))


def test_each_rank_takes_its_shard_of_the_global_batch():
    batch = torch.arange(6)
    shards = [distributed.Rank(r, 2).shard(batch).tolist() for r in range(2)]
    assert shards == [[0, 2, 4], [1, 3, 5]]
    assert distributed.current() == distributed.Rank()


def test_sharding_is_refused_with_what_to_do_instead():
    from lensbook import cli

    with pytest.raises(distributed.ShardingUnavailableError, match="FSDP2.*device-map auto"):
        cli.main(["train", "--output", "unused", "--shard"])
    distributed.check_sharding(False)
    assert distributed.GradientSync([torch.nn.Parameter(torch.zeros(2))], distributed.Rank()).ddp \
        is None
