"""Read a lens's weight files, ``params.pt`` and ``params.safetensors``, and check them.

``params.pt`` is read only with ``torch.load(weights_only=True)``, which refuses (and
never runs) arbitrary objects. Weights that are NaN or infinite are refused. When a
folder holds both files, both are read and must agree: otherwise one of them is stale
(the reference package re-saving a lens writes only ``params.pt``), and the user picks
one with ``weights=`` or moves the other away; lensbook never deletes or rewrites either.
Reading both costs a second read of the weights, once per load.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import safetensors
import torch
from safetensors.torch import load_file

from lensbook.core.errors import LensFileError

TORCH_FILE = "params.pt"
SAFETENSORS_FILE = "params.safetensors"
WEIGHT_FILES = {"pt": TORCH_FILE, "safetensors": SAFETENSORS_FILE}


def read_weights(folder: Path, weights: str | None = None) -> dict[str, torch.Tensor]:
    """Read a lens's state from ``params.safetensors`` and/or ``params.pt``.

    Args:
        folder: The lens folder.
        weights: ``"pt"`` or ``"safetensors"`` to read only that file; ``None`` reads
            whichever exist and, when both do, checks that they agree.

    Raises:
        LensFileError: No weight file; an unreadable one; two that disagree.
    """
    readers = {"safetensors": read_safetensors, "pt": read_torch}
    if weights is not None and weights not in readers:
        raise ValueError(f"weights must be 'pt', 'safetensors' or None, got {weights!r}")
    present = [f for f in readers if (weights in (None, f)) and (folder / WEIGHT_FILES[f]).exists()]
    if not present:
        wanted = WEIGHT_FILES[weights] if weights else f"{SAFETENSORS_FILE} or {TORCH_FILE}"
        raise LensFileError(f"no {wanted} in {folder}")
    if len(present) == 1:
        return readers[present[0]](folder / WEIGHT_FILES[present[0]])
    return _read_both(folder)


def _read_both(folder: Path) -> dict[str, torch.Tensor]:
    """Both weight files, which must hold the same tensors (else one is stale)."""
    paths = {f: folder / name for f, name in WEIGHT_FILES.items()}
    states, broken = {}, {}
    for form, path in paths.items():
        try:
            states[form] = (read_torch if form == "pt" else read_safetensors)(path)
        except LensFileError as err:
            broken[form] = err
    if len(broken) == len(paths):
        raise broken["pt"]
    if broken:
        bad = next(iter(broken))
        other = "safetensors" if bad == "pt" else "pt"
        raise LensFileError(
            f"{broken[bad]}. The folder also holds {paths[other].name}; if that one is "
            f"right, load it alone with load_lens(..., weights={other!r}) or move the "
            "broken file away"
        ) from broken[bad]
    if not _same_state(states["pt"], states["safetensors"]):
        newer = max(paths, key=lambda f: paths[f].stat().st_mtime_ns)
        raise LensFileError(
            f"{folder} holds two different sets of lens weights: {TORCH_FILE} and "
            f"{SAFETENSORS_FILE} disagree ({paths[newer].name} is the newer file), so one "
            "is stale. Load the right one with load_lens(..., weights='pt' or "
            "'safetensors'), or move the stale file away"
        )
    return states["safetensors"]


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and a[k].dtype == b[k].dtype and torch.equal(a[k], b[k])
        for k in a)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file; ``LensFileError`` if unreadable or NaN."""
    try:
        state = load_file(path)
    except (safetensors.SafetensorError, OSError, ValueError) as err:
        raise LensFileError(f"cannot read lens weights {path}: {err}") from err
    return _finite(state, path)


def load_safely(path: Path, error: type[Exception], action: str, advice: str = "") -> object:
    """``torch.load`` of ``path`` that never runs code; any failure is ``error`` naming the file.

    Args:
        path: A file written by ``torch.save``.
        error: The exception to raise, e.g. ``LensFileError`` or ``CheckpointError``.
        action: What the caller was doing, for the message: "load", "resume".
        advice: Appended to the message, e.g. how to start over.
    """
    tail = f"; {advice}" if advice else ""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise error(f"refusing to {action} from {path}: it holds objects other than tensors, "
                    f"and loading it would run arbitrary code{tail}") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise error(f"cannot {action} from {path}: the file is truncated or corrupt "
                    f"({first}){tail}") from err


def read_torch(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``params.pt``, never running code; ``LensFileError`` if unsafe or bad."""
    state = load_safely(path, LensFileError, "load lens weights")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LensFileError(f"{path} must hold a dict of tensors")
    return _finite(state, path)


def _finite(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """The state, after checking that no weight is NaN or infinite."""
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise LensFileError(f"lens weights {path} hold NaN or infinite values (in {key!r}): "
                                "the lens that wrote them diverged; retrain it")
    return state
