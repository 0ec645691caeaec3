"""How an exercise check reports: a ✓ line, or which invariant failed and why.

A check function (``nb01.check_first_layer``…) tests the student's answer against
*invariants* (what any right answer must satisfy), not against one stored number. Each
check is wrapped in :func:`exercise`, which prints ``✓ …`` when every invariant holds.
When one fails, what happens depends on the mode, set explicitly in the notebook:

* **student mode** (the default): print ``✗ Exercise …: <the invariant and why>``,
  no traceback, so a student's stub shows a helpful message;
* **strict mode** (:func:`strict`, called by the solution notebooks inside a
  ``# BEGIN SOLUTION`` block, which the student version drops): raise
  :class:`ExerciseNotSolved`, so nbval fails when a solution breaks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from lensbook.core.errors import LensbookError


class ExerciseNotSolved(LensbookError, AssertionError):
    """An answer breaks one of an exercise's invariants; the message says which and why."""


@dataclass
class Mode:
    """Whether a failed check raises (solution notebooks) or prints (student notebooks)."""

    raises: bool = False


MODE = Mode()


def strict(raises: bool = True) -> None:
    """Make failed checks raise :class:`ExerciseNotSolved` (``raises=False`` undoes it)."""
    MODE.raises = raises


def student_mode() -> None:
    """Make failed checks print their explanation without a traceback (the default)."""
    MODE.raises = False


def require(condition: bool, message: str) -> None:
    """Raise :class:`ExerciseNotSolved` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseNotSolved(message)


def fail(message: str) -> NoReturn:
    """Raise :class:`ExerciseNotSolved` with ``message``."""
    raise ExerciseNotSolved(message)


def exercise(name: str) -> Callable[[Callable[..., str]], Callable[..., None]]:
    """Decorate a check: it returns the success message or raises ExerciseNotSolved.

    Args:
        name: What the messages call the exercise (``"Exercise 1"``).

    Returns:
        A decorator; the decorated check prints ``✓ name: message`` on success and, on
        failure, ``✗ name: why`` (student mode) or raises (strict mode).
    """

    def decorate(check: Callable[..., str]) -> Callable[..., None]:
        @functools.wraps(check)
        def run(*args, **kwargs) -> None:
            try:
                message = check(*args, **kwargs)
            except ExerciseNotSolved as error:
                if MODE.raises:
                    raise ExerciseNotSolved(f"{name}: {error}") from None
                print(f"✗ {name} is not solved yet: {error}")
                return
            print(f"✓ {name}: {message}")

        return run

    return decorate
