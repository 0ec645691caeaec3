"""Choose a notebook's settings for the machine it runs on.

Every notebook has one parameters cell with three profiles:

- ``offline``: the embedded models and small budgets (what CI runs, and what you get
  without a connection);
- ``gpu``: models from the Hugging Face Hub at the paper's settings where they fit a free
  Colab GPU (about 15 GB);
- ``cpu``: models from the Hub with sizes and budgets that finish in about ten minutes on
  two CPU cores (a CPU-only Colab runtime, Binder).

The environment variable ``LENSBOOK_PROFILE`` picks one (``online`` means ``gpu`` when
CUDA is available, else ``cpu``); when it is unset, lensbook uses ``online`` if the Hub
answers and says so visibly otherwise. Each profile may give ``MINUTES``, the expected
running time, which the banner prints.

Example:
    >>> params = select_profile(  # doctest: +SKIP
    ...     offline={"MODEL": "lensbook-tiny", "MINUTES": 1},
    ...     gpu={"MODEL": "gpt2-xl"},
    ...     cpu={"MODEL": "gpt2", "MINUTES": 3},
    ... )
    profile cpu (online, no GPU): model gpt2 on cpu, about 3 minutes
"""

from __future__ import annotations

import os
import socket

import torch

PROFILE_VARIABLE = "LENSBOOK_PROFILE"
PROFILES = ("offline", "gpu", "cpu")
HUB_HOST = "huggingface.co"
WHY = {"offline": "the embedded model, no Hub", "gpu": "online, with a GPU",
       "cpu": "online, no GPU"}


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face Hub can be reached (``False`` when ``HF_HUB_OFFLINE`` is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _online() -> str:
    return "gpu" if torch.cuda.is_available() else "cpu"


def profile_name() -> str:
    """``"offline"``, ``"gpu"`` or ``"cpu"``: from ``$LENSBOOK_PROFILE``, else the machine.

    Raises:
        ValueError: ``$LENSBOOK_PROFILE`` names no profile.
    """
    name = os.environ.get(PROFILE_VARIABLE)
    if name:
        if name == "online":
            return _online()
        if name not in PROFILES:
            raise ValueError(f"{PROFILE_VARIABLE} must be 'offline', 'online', 'gpu' or 'cpu', "
                             f"not {name!r}")
        return name
    if hub_reachable():
        return _online()
    print(
        "⚠ The Hugging Face Hub cannot be reached, so this notebook uses the offline "
        "profile: the embedded model lensbook-tiny and small budgets. "
        f"Set {PROFILE_VARIABLE}=online once you have a connection."
    )
    return "offline"


def binder_profile() -> str:
    """Binder's profile (no GPU, about 2 GB): ``"cpu"`` if the Hub answers, else ``"offline"``."""
    return "cpu" if hub_reachable() else "offline"


def banner(params: dict) -> str:
    """One line naming the active profile, model, device and expected running time."""
    name = params["PROFILE"]
    line = f"profile {name} ({WHY[name]}): model {params.get('MODEL', '?')} on {params['DEVICE']}"
    if "MINUTES" in params:
        minutes = params["MINUTES"]
        line += f", about {minutes} minute{'s' if minutes != 1 else ''}"
    return line


def select_profile(offline: dict, gpu: dict, cpu: dict) -> dict:
    """Return the settings of the active profile and print its banner.

    The result has ``PROFILE`` (its name) and ``DEVICE`` (``"cuda"`` when CUDA is
    available, else ``"cpu"``) added.
    """
    name = profile_name()
    chosen = {"offline": offline, "gpu": gpu, "cpu": cpu}[name]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    params = {**chosen, "PROFILE": name, "DEVICE": device}
    print(banner(params))
    return params
