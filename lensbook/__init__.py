"""lensbook: see how a transformer builds its next-token prediction, layer by layer.

The public API is flat and listed here, in one place: ``lensbook.TunedLens``,
``lensbook.train_lens``, ``lensbook.evaluate_lenses``… The layers behind it are
subpackages (see ``ARCHITECTURE.md``): :mod:`lensbook.core` (model, head, lenses, lens
files, running lenses over prompts), :mod:`lensbook.training`, :mod:`lensbook.analysis`,
:mod:`lensbook.embedded` (the shipped models), :mod:`lensbook.exercises` (the notebooks'
self-checking exercises), :mod:`lensbook.plotting`,
:mod:`lensbook.widgets` and :mod:`lensbook.cli`.

The core is imported eagerly; everything else loads on first use, so ``import
lensbook`` stays light and ipywidgets is only imported by :mod:`lensbook.widgets`.
"""

import importlib

from lensbook.core.errors import (
    CheckpointError,
    InputError,
    LensbookError,
    LensFileError,
    NonFiniteModelError,
    UnsupportedModelError,
)
from lensbook.core.files import load_lens, load_published, save_lens
from lensbook.core.head import Unembed
from lensbook.core.jacobian import (
    JacobianLens,
    JacobianLensConfig,
    load_jacobian_artifact,
    save_jacobian_artifact,
)
from lensbook.core.lens import LENS_TYPES, Lens, LogitLens, lens_class, register_lens
from lensbook.core.model import (
    DEFAULT_MODEL,
    ReadPoint,
    context_length,
    hidden_states,
    load_model,
)
from lensbook.core.parts import find_parts
from lensbook.core.run import layer_logits, trajectories_by_lens, trajectories_from_ids, trajectory
from lensbook.core.sublayer import NoMidPointError, has_mid_points
from lensbook.core.trajectory import Trajectory
from lensbook.core.tuned import TunedLens, TunedLensConfig

SUBMODULES = ("analysis", "cli", "core", "embedded", "exercises", "plotting", "profiles",
              "training", "widgets")

# Public names of the lazily loaded layers: name -> module.
LAZY_NAMES = {
    **dict.fromkeys(("TrainConfig",), "training.config"),
    **dict.fromkeys(("train_lens", "training_memory", "NonFiniteLossError",
                     "InsufficientDataError"), "training.loop"),
    **dict.fromkeys(("TrainHistory",), "training.history"),
    **dict.fromkeys(("release_memory",), "core.memory"),
    **dict.fromkeys(("TokenChunks", "chunk_texts"), "training.data"),
    **dict.fromkeys(("load_chunks", "load_texts", "filter_texts"), "training.sources"),
    **dict.fromkeys(("evaluate_lenses", "evaluation_memory", "pivot", "save_metrics",
                     "unigram_cross_entropy"), "analysis.evaluate"),
    **dict.fromkeys(("transfer_matrix", "transfer_grid"), "analysis.transfer"),
    **dict.fromkeys(("STATISTICS", "Statistic", "get_statistic", "copy_rate",
                     "prediction_depth", "top_k", "top_tokens"), "analysis.statistic"),
    **dict.fromkeys(("layer_table",), "analysis.tables"),
    **dict.fromkeys(("lens_costs",), "analysis.cost"),
    **dict.fromkeys(("depth_table", "most_frequent", "frequency_ranking", "text_depths",
                     "TextDepth"),
                    "analysis.depth"),
    **dict.fromkeys(("layer_covariances", "covariance_similarity"), "analysis.drift"),
    **dict.fromkeys(("compare_models", "evaluate_model", "layer_curves", "depth_summary",
                     "spread_across_models",
                     "output_kl"), "analysis.compare"),
    **dict.fromkeys(("finetune",), "embedded.finetune"),
    **dict.fromkeys(("Repeats", "random_repeats", "text_repeats"), "analysis.repeats"),
    **dict.fromkeys(("copy_table", "summarize", "copy_layers", "repetition_gain"),
                    "analysis.copying"),
    **dict.fromkeys(("prompt_features",), "analysis.features"),
    **dict.fromkeys(("detection_table",), "analysis.detectors"),
    **dict.fromkeys(("make_prompts",), "analysis.injection"),
    **dict.fromkeys(("authors_curves", "authors_table1", "AUTHORS_VALUES"), "analysis.authors"),
    **dict.fromkeys(("select_profile",), "profiles"),
    **dict.fromkeys(("explorer", "top_k_explorer"), "widgets"),
}

__all__ = [
    "CheckpointError",
    "DEFAULT_MODEL",
    "InputError",
    "LensbookError",
    "NonFiniteModelError",
    "JacobianLens",
    "JacobianLensConfig",
    "LENS_TYPES",
    "Lens",
    "LensFileError",
    "LogitLens",
    "NoMidPointError",
    "ReadPoint",
    "Trajectory",
    "TunedLens",
    "TunedLensConfig",
    "Unembed",
    "UnsupportedModelError",
    "context_length",
    "find_parts",
    "has_mid_points",
    "hidden_states",
    "layer_logits",
    "lens_class",
    "load_lens",
    "load_jacobian_artifact",
    "load_model",
    "load_published",
    "register_lens",
    "save_jacobian_artifact",
    "save_lens",
    "trajectories_by_lens",
    "trajectories_from_ids",
    "trajectory",
    *SUBMODULES,
    *LAZY_NAMES,
]
__version__ = "0.1.0"


def __getattr__(name: str):
    """Import layers on first access: ``lensbook.plotting``, ``lensbook.train_lens``, …."""
    if name in SUBMODULES:
        return importlib.import_module(f"lensbook.{name}")
    if name in LAZY_NAMES:
        return getattr(importlib.import_module(f"lensbook.{LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'lensbook' has no attribute {name!r}")
