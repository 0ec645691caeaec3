"""Write a file so that a reader finds the old file or the whole new one, never half of one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write`` on a private file beside ``path``, then move it onto ``path``.

    The private name carries the process id, so processes writing the same file at once
    (two notebook kernels filling one cache) never write into each other's file; the
    move (``os.replace``) is atomic on one file system. If ``write`` raises, its partial
    file is removed and the old ``path``, if any, is left as it was.

    Args:
        path: The file to write.
        write: Writes the file at the path it is given (e.g. ``lambda p: torch.save(x, p)``).

    Returns:
        ``path``.
    """
    path = Path(path)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
