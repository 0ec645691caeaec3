"""lensbook: see how a transformer builds its next-token prediction, layer by layer."""

from lensbook.artifacts import LensFileError, load_lens, load_published, save_lens
from lensbook.lenses import LogitLens, TunedLens, TunedLensConfig
from lensbook.models import DEFAULT_MODEL, UnsupportedModelError, find_parts, load_model
from lensbook.unembed import Unembed

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
]
__version__ = "0.1.0"
