"""Write student notebooks: the solution notebooks with every solution removed.

The notebooks in ``notebooks/`` are the one source: they hold the exercises *and* their
solutions, and nbval runs them. In a code cell, the lines from ``# BEGIN SOLUTION`` to
``# END SOLUTION`` (both included) are the solution; the stub the student fills (``layer
= None  # your code here``) stands *before* the block and is kept, as is the ``check_…``
call after it. In a markdown cell, a ``<details>`` block whose summary starts with
"Solution" is removed. Outputs and execution counts are cleared.

Usage::

    python -m lensbook.exercises.student notebooks/ notebooks/student/
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
DETAILS = re.compile(r"<details>\s*<summary>\s*Solution.*?</details>\n?", re.S | re.I)


def strip_code(source: str) -> str:
    """``source`` without its solution blocks (raises ValueError on an unclosed block)."""
    kept, inside = [], False
    for line in source.splitlines(keepends=True):
        marker = line.strip()
        if marker == BEGIN:
            inside = True
        elif marker == END:
            if not inside:
                raise ValueError(f"{END!r} without {BEGIN!r} in:\n{source}")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} is never closed in:\n{source}")
    return "".join(kept).rstrip("\n")


def strip_markdown(source: str) -> str:
    """``source`` without its ``<details><summary>Solution…</details>`` blocks."""
    return DETAILS.sub("", source).rstrip("\n")


def student_cell(cell: dict) -> dict:
    """A copy of ``cell`` as the student sees it: no solution, no outputs."""
    cell = dict(cell)
    source = "".join(cell["source"])
    if cell["cell_type"] == "code":
        cell["source"] = strip_code(source)
        cell["outputs"], cell["execution_count"] = [], None
    elif cell["cell_type"] == "markdown":
        cell["source"] = strip_markdown(source)
    return cell


def student_notebook(notebook: dict) -> dict:
    """The student version of a notebook (a new dict; ``notebook`` is unchanged)."""
    return {**notebook, "cells": [student_cell(c) for c in notebook["cells"]]}


def write_students(source: Path, target: Path, pattern: str = "[0-9][0-9]_*.ipynb") -> list[Path]:
    """Write the student version of every notebook in ``source`` matching ``pattern``.

    Returns:
        The written paths, in name order.
    """
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.glob(pattern)):
        notebook = student_notebook(json.loads(path.read_text(encoding="utf-8")))
        out = target / path.name
        out.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m lensbook.exercises.student SOURCE TARGET``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of solution notebooks")
    parser.add_argument("target", type=Path, help="folder for the student notebooks")
    args = parser.parse_args(argv)
    for path in write_students(args.source, args.target):
        print(path)


if __name__ == "__main__":
    main()
