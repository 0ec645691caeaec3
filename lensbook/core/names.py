"""Look a name up in a table of named things (lens types, statistics, tasks)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def lookup(table: Mapping[str, T], name: str, what: str) -> T:
    """``table[name]``, or a ``ValueError`` that names ``what`` and lists the known names."""
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}: choose one of {sorted(table)}")
    return table[name]
