"""The errors lensbook raises for bad input, in one place.

Every class derives from :class:`LensbookError` (so ``except lensbook.LensbookError``
catches any of them) and from the built-in class it refines (``ValueError`` for bad
values and files, ``FloatingPointError`` for NaN), so code written against the
built-in classes keeps working. Each message names the file, model or value at fault
and says what to do; the command line prints it on one line, without a traceback.
"""

from __future__ import annotations


class LensbookError(Exception):
    """Base class: an input lensbook refuses, with a message saying what to do."""


class UnsupportedModelError(LensbookError, ValueError):
    """The model is not a decoder-only causal LM whose output head lensbook can find."""


class LensFileError(LensbookError, ValueError):
    """A lens file is missing, truncated, corrupt, unsafe, stale or of the wrong type."""


class CheckpointError(LensbookError, ValueError):
    """A training checkpoint (``last.pt``) is truncated, unsafe or not a checkpoint."""


class InputError(LensbookError, ValueError):
    """A prompt, token ids or a lens that does not fit the model."""


class InsufficientDataError(LensbookError, ValueError):
    """The data holds fewer tokens than the run's budget."""


class NonFiniteLossError(LensbookError, FloatingPointError):
    """A layer's loss became NaN or infinite; training stopped before the update."""


class NonFiniteModelError(LensbookError, FloatingPointError):
    """The model's hidden states or logits hold NaN or infinite values."""
