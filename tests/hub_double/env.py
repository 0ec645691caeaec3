"""Where the double lives and the environment that points Hugging Face libraries at it."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The double's folder; ``$LENSBOOK_HUB_DOUBLE`` moves it.
ROOT = Path(os.environ.get("LENSBOOK_HUB_DOUBLE", REPO_ROOT / ".cache" / "hub-double"))


def hub_cache(root: Path = ROOT) -> Path:
    """``HF_HUB_CACHE``: models and the Space, in ``huggingface_hub``'s layout."""
    return root / "hf" / "hub"


def datasets_cache(root: Path = ROOT) -> Path:
    """``HF_DATASETS_CACHE``: the Arrow caches ``datasets`` falls back to offline."""
    return root / "hf" / "datasets"


def double_env(root: Path = ROOT) -> dict[str, str]:
    """Environment variables that make the Hugging Face libraries answer from the double.

    Set them before ``huggingface_hub``/``datasets`` are imported: both read them once.
    """
    return {
        "HF_HOME": str(root / "hf"),
        "HF_HUB_CACHE": str(hub_cache(root)),
        "HF_DATASETS_CACHE": str(datasets_cache(root)),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


def shell_exports(root: Path = ROOT) -> str:
    """The variables as ``export`` lines, for ``eval "$(python -m tests.hub_double.env)"``."""
    return "\n".join(f"export {k}={v}" for k, v in double_env(root).items())


if __name__ == "__main__":
    print(shell_exports())
