"""Profile selection for the notebooks: offline, online with a GPU, online on a CPU."""

import pytest

from lensbook import profiles

OFFLINE = {"MODEL": "lensbook-tiny", "MINUTES": 1}
GPU, CPU = {"MODEL": "gpt2-xl"}, {"MODEL": "gpt2", "MINUTES": 8}


def select():
    return profiles.select_profile(OFFLINE, GPU, CPU)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(profiles.torch.cuda, "is_available", lambda: False)


def test_environment_variable_picks_the_profile(monkeypatch, no_gpu):
    for name, model in (("offline", "lensbook-tiny"), ("gpu", "gpt2-xl"), ("cpu", "gpt2")):
        monkeypatch.setenv("LENSBOOK_PROFILE", name)
        assert select() == {"MODEL": model, "PROFILE": name, "DEVICE": "cpu",
                            **({"MINUTES": 1} if name == "offline" else {}),
                            **({"MINUTES": 8} if name == "cpu" else {})}


def test_online_means_gpu_or_cpu_by_the_machine(monkeypatch):
    monkeypatch.setenv("LENSBOOK_PROFILE", "online")
    monkeypatch.setattr(profiles.torch.cuda, "is_available", lambda: True)
    assert select()["PROFILE"] == "gpu"
    assert select()["DEVICE"] == "cuda"
    monkeypatch.setattr(profiles.torch.cuda, "is_available", lambda: False)
    assert select()["PROFILE"] == "cpu"


def test_unknown_profile_is_an_error(monkeypatch):
    monkeypatch.setenv("LENSBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match="'offline', 'online', 'gpu' or 'cpu'"):
        select()


def test_unreachable_hub_falls_back_to_offline_and_says_so(monkeypatch, capsys):
    monkeypatch.delenv("LENSBOOK_PROFILE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert select()["PROFILE"] == "offline"
    assert "cannot be reached" in capsys.readouterr().out


def test_reachable_hub_without_gpu_gives_the_cpu_profile(monkeypatch, no_gpu):
    monkeypatch.delenv("LENSBOOK_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "hub_reachable", lambda timeout=2.0: True)
    assert select()["PROFILE"] == "cpu"


def test_banner_names_profile_model_device_and_time(monkeypatch, capsys, no_gpu):
    monkeypatch.setenv("LENSBOOK_PROFILE", "cpu")
    select()
    expected = "profile cpu (online, no GPU): model gpt2 on cpu, about 8 minutes\n"
    assert capsys.readouterr().out == expected
    monkeypatch.setenv("LENSBOOK_PROFILE", "offline")
    select()
    assert "about 1 minute\n" in capsys.readouterr().out


def test_binder_picks_cpu_with_the_hub_and_offline_without(monkeypatch):
    monkeypatch.setattr(profiles, "hub_reachable", lambda timeout=2.0: True)
    assert profiles.binder_profile() == "cpu"
    monkeypatch.setattr(profiles, "hub_reachable", lambda timeout=2.0: False)
    assert profiles.binder_profile() == "offline"


def _binder_start(**variables) -> dict[str, str]:
    """The environment the notebook server gets from ``binder/start``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ("LENSBOOK_PROFILE", "OMP_NUM_THREADS")}
    env.update(variables, PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    out = subprocess.run(["bash", str(root / "binder" / "start"), "env"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_binder_start_sets_a_profile_that_fits_and_few_threads():
    env = _binder_start(HF_HUB_OFFLINE="1")
    assert env["LENSBOOK_PROFILE"] == "offline" and env["OMP_NUM_THREADS"] == "2"
    env = _binder_start(LENSBOOK_PROFILE="gpu", OMP_NUM_THREADS="1")
    assert env["LENSBOOK_PROFILE"] == "gpu" and env["OMP_NUM_THREADS"] == "1"
