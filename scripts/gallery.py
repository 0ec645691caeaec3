"""Collect the figures the notebooks made into ``docs/figures/``: ``make gallery``.

Every figure a notebook saves with ``plotting.save_figure(fig, "NAME")`` is shown by the
same cell. This script takes that cell's stored PNG output, exactly as the executed
notebook holds it, and writes it to ``docs/figures/NAME.png``, removing PNGs that no
notebook makes any more. It runs nothing, so it is cheap and gives the same bytes every
time: re-execute the notebooks first, then run it. ``--check`` writes nothing and exits
with 1 when ``docs/figures/`` differs from the notebooks (``tests/test_readme_figures.py``
checks the same).

Usage::

    python scripts/gallery.py [--notebooks notebooks] [--out docs/figures] [--check]
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAVED = re.compile(r"save_figure\(\s*\w+\s*,\s*[\"']([^\"']+)[\"']")
# An exercise's solution (lensbook.exercises) may save a figure: answers are not gallery.
SOLUTION = "# BEGIN SOLUTION"


def notebook_figures(path: Path) -> dict[str, bytes]:
    """``{name: PNG bytes}`` of the figures that one executed notebook saves and shows.

    Raises:
        ValueError: A cell saves more than one figure, or does not show exactly one image.
    """
    figures = {}
    for cell in json.loads(path.read_text())["cells"]:
        source = "".join(cell["source"])
        names = SAVED.findall(source) if cell["cell_type"] == "code" else []
        if not names or SOLUTION in source:
            continue
        pngs = [o["data"]["image/png"] for o in cell.get("outputs", [])
                if "image/png" in o.get("data", {})]
        if len(names) != 1 or len(pngs) != 1:
            raise ValueError(f"{path.name}: the cell saving {names} shows {len(pngs)} images; "
                             "a gallery cell saves one figure and shows it once (re-execute?)")
        figures[names[0]] = base64.b64decode(pngs[0])
    return figures


def gallery(folder: Path) -> dict[str, bytes]:
    """``{name: PNG bytes}`` of every notebook in ``folder``, in notebook order."""
    figures: dict[str, bytes] = {}
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        found = notebook_figures(path)
        twice = figures.keys() & found.keys()
        if twice:
            raise ValueError(f"{path.name} saves {sorted(twice)}, which another notebook saves")
        figures.update(found)
    return figures


def committed(out: Path) -> dict[str, bytes]:
    """``{name: bytes}`` of the PNGs in ``out``."""
    return {p.stem: p.read_bytes() for p in sorted(out.glob("*.png"))}


def write(figures: dict[str, bytes], out: Path) -> list[str]:
    """Make ``out`` hold exactly ``figures``; return the names written or removed."""
    out.mkdir(parents=True, exist_ok=True)
    changed = []
    for name in committed(out):
        if name not in figures:
            (out / f"{name}.png").unlink()
            changed.append(name)
    for name, data in figures.items():
        path = out / f"{name}.png"
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
            changed.append(name)
    return changed


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the gallery; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = parser.parse_args(argv)
    figures = gallery(args.notebooks)
    if args.check:
        stale = sorted(set(figures.items()) ^ set(committed(args.out).items()))
        names = sorted({name for name, _ in stale})
        state = "differs from the notebooks: " + ", ".join(names) if names else "up to date"
        print(f"{args.out}: {state}")
        return 1 if names else 0
    changed = write(figures, args.out)
    print(f"{len(figures)} figures in {args.out}; changed: {', '.join(changed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
