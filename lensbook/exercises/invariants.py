"""Invariants that many exercises share: the answer's type, shape and values.

Each function raises :class:`~lensbook.exercises.core.ExerciseNotSolved` with a
message that names the answer, what was expected and what was found, and returns the
answer converted to a plain value (``int``, ``float``, ``bool``) when that helps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from lensbook.exercises.core import require

STUB = "replace the `None` stub with your answer"


def found(value: object) -> str:
    """A short description of ``value`` for messages (``None``, a type, a number)."""
    if value is None:
        return f"None ({STUB})"
    if isinstance(value, (bool, int, float, str)):
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__


def an_int(value: object, what: str, low: int, high: int) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (numpy and 0-d tensor ints accepted)."""
    integral = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if hasattr(value, "ndim") and getattr(value, "ndim", 1) == 0 and hasattr(value, "item"):
        integral = isinstance(value.item(), int)
        value = value.item() if integral else value
    require(integral, f"{what} must be an int, got {found(value)}")
    require(low <= int(value) <= high, f"{what} must be between {low} and {high}, got {value}")
    return int(value)


def a_bool(value: object, what: str) -> bool:
    """``value`` as a ``bool`` (``numpy.bool_`` accepted)."""
    require(isinstance(value, (bool, np.bool_)), f"{what} must be True or False, "
            f"got {found(value)}")
    return bool(value)


def a_float(value: object, what: str) -> float:
    """``value`` as a finite ``float``."""
    ok = isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool)
    require(ok, f"{what} must be a number, got {found(value)}")
    require(math.isfinite(float(value)), f"{what} must be finite, got {value}")
    return float(value)


def a_string(value: object, what: str) -> str:
    """``value`` as a non-empty ``str``."""
    require(isinstance(value, str) and value.strip() != "",
            f"{what} must be a non-empty string, got {found(value)}")
    return value


def a_frame(value: object, what: str, columns: Iterable[str]) -> pd.DataFrame:
    """``value`` as a DataFrame holding ``columns``."""
    require(isinstance(value, pd.DataFrame), f"{what} must be a pandas DataFrame, "
            f"got {found(value)}")
    missing = [c for c in columns if c not in value.columns]
    require(not missing, f"{what} lacks the column(s) {missing}; it has {list(value.columns)}")
    return value


def a_series(value: object, what: str, index: Iterable) -> pd.Series:
    """``value`` as a Series (or a one-column DataFrame) with exactly the labels ``index``."""
    if isinstance(value, pd.DataFrame) and value.shape[1] == 1:
        value = value.iloc[:, 0]
    require(isinstance(value, pd.Series), f"{what} must be a pandas Series, got {found(value)}")
    expected = list(index)
    require(sorted(value.index.tolist()) == sorted(expected),
            f"{what} must have one entry per {expected} (its index), "
            f"got the index {value.index.tolist()}")
    return value.loc[expected]


def close(answer: object, expected: object, what: str, how: str, tol: float = 1e-4) -> None:
    """Require ``answer`` to equal ``expected`` within ``tol`` (relative and absolute).

    Args:
        answer: The student's numbers (scalar, Series, array).
        expected: What the definition gives, same shape.
        what: The answer's name, for the message.
        how: The definition, for the message ("KL at step 1 minus …").
        tol: Relative and absolute tolerance.
    """
    a, e = np.asarray(answer, dtype=float), np.asarray(expected, dtype=float)
    require(a.shape == e.shape, f"{what} has shape {a.shape}, expected {e.shape}")
    wrong = ~np.isclose(a, e, rtol=tol, atol=tol)
    if wrong.any():
        first = int(np.flatnonzero(wrong.ravel())[0])
        require(False, f"{what} does not follow its definition ({how}): entry {first} is "
                f"{a.ravel()[first]:.4g}, the definition gives {e.ravel()[first]:.4g}")
