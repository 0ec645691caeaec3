"""Data-parallel training on the CPU: 2 gloo processes give the same lens as one process.

The processes talk over the loopback interface only (``GLOO_SOCKET_IFNAME=lo``: by default
gloo connects through the address the host name resolves to, which a sandbox may block),
and every wait is bounded, so a machine that cannot connect them fails or skips in
minutes instead of hanging the test run.
"""

import os
import socket
import time
from datetime import timedelta

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
CONFIG = dict(steps=4, tokens_per_step=6 * SEQ, seq_len=SEQ, batch_size=2, progress=False)


def _ids():
    return torch.randint(1, VOCAB, (64, SEQ), generator=torch.Generator().manual_seed(0))


def _worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    info = distributed.init_from_env("gloo", timeout=CONNECT)
    assert (info.rank, info.world_size) == (rank, world_size)
    try:
        dist.barrier()
        open(os.path.join(out_dir, f"rank{rank}.connected"), "w").close()
        probe = distributed.GradientSync([torch.nn.Parameter(torch.zeros(2))], info)
        assert isinstance(probe.ddp, torch.nn.parallel.DistributedDataParallel)
        lens, history = train_lens(make_model("gpt2"), _ids(), TrainConfig(**CONFIG))
        torch.save({"state": lens.translators.state_dict(), "loss": history.loss},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_two_processes(out_dir):
    """Run both ranks; skip if they never connect, fail if they connect and then stall."""
    context = mp.start_processes(_worker, args=(2, _free_port(), str(out_dir)), nprocs=2,
                                 join=False, start_method="spawn")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not context.join(timeout=5):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                raise TimeoutError(f"not finished within {DEADLINE_S} s")
    except (TimeoutError, mp.ProcessRaisedException) as error:
        connected = len(list(out_dir.glob("*.connected")))
        if connected < 2 and "time" in str(error).lower():  # timed out, or "Timed out"
            pytest.skip(f"2 gloo processes could not connect over loopback on this machine "
                        f"({connected} of 2 did): {str(error).strip().splitlines()[-1]}")
        raise


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    _run_two_processes(tmp_path)
    single, history = train_lens(make_model("gpt2"), _ids(), TrainConfig(**CONFIG))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
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
