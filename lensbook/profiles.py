"""Choose between a notebook's offline and online settings.

Every notebook has one parameters cell with two profiles: ``offline`` (the
embedded model and small budgets: what CI runs) and ``online`` (a real
pretrained model from the Hugging Face Hub: what a student on Colab sees).
The environment variable ``LENSBOOK_PROFILE`` picks one; when it is unset,
lensbook uses ``online`` if the Hub answers and says so visibly otherwise.

Example:
    >>> params = select_profile(  # doctest: +SKIP
    ...     offline={"MODEL": "lensbook-tiny"}, online={"MODEL": "gpt2"}
    ... )
"""

from __future__ import annotations

import os
import socket

PROFILE_VARIABLE = "LENSBOOK_PROFILE"
HUB_HOST = "huggingface.co"


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face Hub can be reached (``False`` when ``HF_HUB_OFFLINE`` is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def profile_name() -> str:
    """``"offline"`` or ``"online"``: ``$LENSBOOK_PROFILE`` if set, else by Hub reachability."""
    name = os.environ.get(PROFILE_VARIABLE)
    if name:
        if name not in ("offline", "online"):
            raise ValueError(f"{PROFILE_VARIABLE} must be 'offline' or 'online', not {name!r}")
        return name
    if hub_reachable():
        return "online"
    print(
        "⚠ The Hugging Face Hub cannot be reached, so this notebook uses the offline "
        "profile: the embedded model lensbook-tiny and small budgets. "
        f"Set {PROFILE_VARIABLE}=online once you have a connection."
    )
    return "offline"


def select_profile(offline: dict, online: dict) -> dict:
    """Return the settings of the active profile, with ``PROFILE`` set to its name."""
    name = profile_name()
    return {**(online if name == "online" else offline), "PROFILE": name}
