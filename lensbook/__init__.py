"""lensbook: see how a transformer builds its next-token prediction, layer by layer.

The core (models, lenses, lens files) is imported eagerly; the other modules load
on first use (``lensbook.plotting``, ``lensbook.widgets``, …), so ``import lensbook``
stays light and ipywidgets is only imported by :mod:`lensbook.widgets`.
"""

import importlib

from lensbook.artifacts import LensFileError, load_lens, load_published, save_lens
from lensbook.lenses import LogitLens, TunedLens, TunedLensConfig
from lensbook.models import DEFAULT_MODEL, UnsupportedModelError, find_parts, load_model
from lensbook.unembed import Unembed

SUBMODULES = (
    "anomaly", "compare", "copying", "corpus", "data", "drift", "evaluate", "featurize",
    "injection", "metrics", "plotting", "profiles", "sources", "statistics", "tables", "tokens",
    "train", "train_config", "trajectory", "transfer", "widgets",
)

# Names re-exported from the lazily loaded modules: ``lensbook.train_lens`` etc.
LAZY_NAMES = {
    "TrainConfig": "train_config",
    "train_lens": "train",
    "evaluate_lenses": "evaluate",
    "transfer_matrix": "transfer",
    "load_chunks": "sources",
    "load_texts": "sources",
    "Trajectory": "trajectory",
    "trajectories_by_lens": "trajectory",
}

__all__ = [
    "DEFAULT_MODEL",
    "LensFileError",
    "LogitLens",
    "TunedLens",
    "TunedLensConfig",
    "Unembed",
    "UnsupportedModelError",
    "find_parts",
    "load_lens",
    "load_model",
    "load_published",
    "save_lens",
    *SUBMODULES,
    *LAZY_NAMES,
]
__version__ = "0.1.0"


def __getattr__(name: str):
    """Import submodules on first access: ``lensbook.plotting`` works without an import."""
    if name in SUBMODULES:
        return importlib.import_module(f"lensbook.{name}")
    if name in LAZY_NAMES:
        return getattr(importlib.import_module(f"lensbook.{LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'lensbook' has no attribute {name!r}")
