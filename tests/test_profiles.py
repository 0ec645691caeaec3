"""Offline/online profile selection for the notebooks."""

import pytest

from lensbook import profiles

OFFLINE, ONLINE = {"MODEL": "lensbook-tiny"}, {"MODEL": "gpt2"}


def test_environment_variable_picks_the_profile(monkeypatch):
    monkeypatch.setenv("LENSBOOK_PROFILE", "online")
    assert profiles.select_profile(OFFLINE, ONLINE) == {"MODEL": "gpt2", "PROFILE": "online"}
    monkeypatch.setenv("LENSBOOK_PROFILE", "offline")
    assert profiles.select_profile(OFFLINE, ONLINE)["MODEL"] == "lensbook-tiny"


def test_unknown_profile_is_an_error(monkeypatch):
    monkeypatch.setenv("LENSBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match="'offline' or 'online'"):
        profiles.select_profile(OFFLINE, ONLINE)


def test_unreachable_hub_falls_back_to_offline_and_says_so(monkeypatch, capsys):
    monkeypatch.delenv("LENSBOOK_PROFILE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert profiles.select_profile(OFFLINE, ONLINE)["PROFILE"] == "offline"
    assert "cannot be reached" in capsys.readouterr().out


def test_reachable_hub_gives_online(monkeypatch):
    monkeypatch.delenv("LENSBOOK_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "hub_reachable", lambda timeout=2.0: True)
    assert profiles.select_profile(OFFLINE, ONLINE)["PROFILE"] == "online"
