"""Save and load lenses of any registered type: the reference layout, safetensors, the Hub.

A lens folder holds ``config.json`` (the lens's ``config``; its ``lens_type`` picks the
class from :data:`~lensbook.core.lens.LENS_TYPES` on load, and defaults to the
reference's ``"linear_tuned_lens"``) and the lens's :meth:`~lensbook.core.lens.Lens.state`,
for a tuned lens the translator weights under the keys ``"0.weight"``, ``"0.bias"``, …:

* ``params.pt``: the reference package's layout (a torch pickle). lensbook reads it
  only with ``torch.load(weights_only=True)``, which refuses arbitrary objects.
* ``params.safetensors``: the same tensors in a format that cannot run code.

When a folder holds both, both are read and must agree (see :mod:`lensbook.core.weights`):
otherwise one is stale and :func:`load_lens` refuses, naming the newer file.

Published lenses live in the Hugging Face Space ``AlignmentResearch/tuned-lens``
under ``lens/<model name>/``; :func:`load_published` fetches them with
``huggingface_hub`` (the environment variables ``TUNED_LENS_REPO_ID`` and
``TUNED_LENS_REPO_TYPE`` point it elsewhere, as in the reference package).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import fields
from pathlib import Path

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors.torch import save_file
from transformers import PreTrainedModel

from lensbook.core.errors import LensFileError
from lensbook.core.head import Unembed
from lensbook.core.lens import Lens, lens_class
from lensbook.core.model import num_layers
from lensbook.core.tuned import LENS_TYPE
from lensbook.core.weights import (
    SAFETENSORS_FILE,
    TORCH_FILE,
    WEIGHT_FILES,
    read_torch,
    read_weights,
)
from lensbook.embedded.families import EMBEDDED_MODELS

CONFIG_FILE = "config.json"
DEFAULT_REPO_ID = "AlignmentResearch/tuned-lens"
DEFAULT_REPO_TYPE = "space"
# tuned-lens 0.1.0 wrote the hash as ``unemebd_hash`` (renamed in 0.1.1) and lenses published
# with it keep that key: read it as ``unembed_hash`` so their hash is checked, not ignored.
MISSPELLED_HASH = "unemebd_hash"


def save_lens(
    lens: Lens, folder: str | Path, formats: tuple[str, ...] = ("pt", "safetensors")
) -> Path:
    """Write ``config.json`` and the lens's state (translator weights) to ``folder``.

    Args:
        lens: The lens to save (any registered type with a ``config``).
        folder: Destination folder (created if needed).
        formats: ``"pt"`` for the reference's ``params.pt``, ``"safetensors"`` for
            ``params.safetensors``; both by default.

    Returns:
        The folder.

    Raises:
        ValueError: An unknown format, or a lens type that saves nothing (the logit lens).
        LensFileError: Saving one format where the folder holds the other's file, which
            would be left stale (nothing is written).
    """
    folder = Path(folder)
    _check_can_save(lens, folder, formats)
    folder.mkdir(parents=True, exist_ok=True)
    _fill_hashes(lens)
    state = {k: v.detach().cpu().contiguous() for k, v in lens.state().items()}
    if "pt" in formats:
        torch.save(state, folder / TORCH_FILE)
    if "safetensors" in formats:
        save_file(state, folder / SAFETENSORS_FILE)
    config = {**lens.config.to_dict(), "lens_type": lens.lens_type}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def _check_can_save(lens: Lens, folder: Path, formats: tuple[str, ...]) -> None:
    unknown = set(formats) - set(WEIGHT_FILES)
    if unknown or not formats:
        raise ValueError(f"unknown lens file formats {sorted(unknown)}: choose from "
                         f"{sorted(WEIGHT_FILES)}")
    if getattr(lens, "config", None) is None:
        raise ValueError(f"a {lens.label} has no saved form: rebuild it with "
                         f"{type(lens).__name__}.from_model(model)")
    stale = [WEIGHT_FILES[f] for f in WEIGHT_FILES if f not in formats
             and (folder / WEIGHT_FILES[f]).exists()]
    if stale:
        raise LensFileError(
            f"{folder / stale[0]} would be left holding other weights than the new "
            f"{'/'.join(WEIGHT_FILES[f] for f in formats)}: save with formats=('pt', "
            "'safetensors'), or move that file away first"
        )


def _fill_hashes(lens: Lens) -> None:
    """Record the output head's hashes in the config, where not already recorded.

    Done at save time rather than when a lens is built: hashing a large head (256k
    tokens × 4096) takes seconds and a float32 copy of it.
    """
    if lens.config.unembed_hash is None:
        lens.config.unembed_hash = lens.unembed.reference_hash()
    if lens.config.unembed_sha256 is None:
        lens.config.unembed_sha256 = lens.unembed.content_hash()


def load_lens(folder: str | Path, model: PreTrainedModel, *, weights: str | None = None) -> Lens:
    """Load a lens for ``model`` from a folder in either layout; its class from ``lens_type``.

    When the folder holds both ``params.safetensors`` and ``params.pt``, both are read
    and must hold the same tensors: a folder where one was rewritten (the reference
    package re-saving a lens writes only ``params.pt``) is refused rather than loaded
    with stale weights. ``weights="pt"`` or ``"safetensors"`` reads only that file.

    Raises:
        LensFileError: A file is missing, truncated, corrupt, holds non-tensor objects,
            a value of the wrong type, or the two weight files disagree.
        ValueError: The lens's ``d_model`` or layer count does not fit the model.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LensFileError(f"lens folder not found: {folder}")
    config = read_config(folder / CONFIG_FILE)
    state = read_weights(folder, weights)
    return build_lens(model, config, state)


def read_config(path: Path):
    """Parse a lens ``config.json`` into its type's config; unknown keys warn.

    ``unemebd_hash`` (the reference package's spelling) is read as ``unembed_hash``.

    Raises:
        LensFileError: Missing, not JSON, without a required field, with a value of the
            wrong type or an unregistered ``lens_type``.
    """
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise LensFileError(f"lens config not found: {path}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LensFileError(f"lens config {path} is not valid JSON: {err}") from err
    if not isinstance(raw, dict):
        raise LensFileError(f"lens config {path} must hold a JSON object")
    if MISSPELLED_HASH in raw and "unembed_hash" not in raw:
        raw["unembed_hash"] = raw.pop(MISSPELLED_HASH)
    lens_type = raw.get("lens_type", LENS_TYPE)
    try:
        config_class = lens_class(str(lens_type)).config_class
    except ValueError as err:
        raise LensFileError(f"lens config {path}: {err}") from err
    known = {f.name for f in fields(config_class)}
    for key in sorted(set(raw) - known):
        warnings.warn(f"ignoring unknown key {key!r} in {path}", stacklevel=2)
    try:
        config = config_class(**{k: v for k, v in raw.items() if k in known})
    except TypeError as err:
        raise LensFileError(f"lens config {path} lacks a required field: {err}") from err
    except ValueError as err:
        raise LensFileError(f"lens config {path} is invalid: {err}") from err
    _check_types(config, path)
    return config


# Type names in config dataclass annotations -> the JSON values they accept.
_JSON_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
               "dict": (dict,), "list": (list,), "None": (type(None),)}


def _check_types(config, path: Path) -> None:
    """Refuse a value of the wrong type (``"d_model": "64"``), naming the key and the file."""
    for f in fields(config):
        names = [n.strip() for n in str(f.type).split("|")]
        if not all(n in _JSON_TYPES for n in names):
            continue  # a type this check does not know: left to the lens class
        value = getattr(config, f.name)
        allowed = tuple(t for n in names for t in _JSON_TYPES[n])
        wrong_bool = isinstance(value, bool) and bool not in allowed
        if wrong_bool or not isinstance(value, allowed):
            raise LensFileError(
                f"lens config {path}: {f.name} must be {' or '.join(names)}, got "
                f"{value!r} ({type(value).__name__}); correct the file"
            )


def build_lens(model: PreTrainedModel, config, state: dict) -> Lens:
    """Check ``config`` and ``state`` against ``model`` and build the lens."""
    want = (model.config.get_text_config().hidden_size, num_layers(model))
    have = (config.d_model, config.num_hidden_layers)
    if have != want:
        raise ValueError(
            f"lens shape (d_model={have[0]}, layers={have[1]}) does not fit "
            f"{type(model).__name__} (hidden_size={want[0]}, num_hidden_layers={want[1]})"
        )
    unembed = Unembed(model)
    check_unembed_hash(config, unembed, model.config.name_or_path)
    lens = lens_class(config.lens_type).from_config(unembed, config)
    try:
        lens.load_state(state)
    except RuntimeError as err:
        raise LensFileError(f"lens weights do not match the config: {err}") from err
    return lens.to(model.device)


def check_unembed_hash(config, unembed: Unembed, model_name: str | None = None) -> None:
    """Warn when the lens was trained for a different output head.

    Uses lensbook's full content hash when the file has one, else the reference's. The
    warning names the model the lens was trained for and ``model_name``, the model it
    is being loaded onto.
    """
    if config.unembed_sha256 is not None:
        expected, actual = config.unembed_sha256, unembed.content_hash()
    elif config.unembed_hash is not None:
        expected, actual = config.unembed_hash, unembed.reference_hash()
    else:
        return
    if actual != expected:
        trained_for = config.base_model_name_or_path or "another model"
        warnings.warn(
            f"the lens was trained for {trained_for}, whose unembedding differs from that "
            f"of {model_name or 'this model'} (hash {expected[:16]}… vs {actual[:16]}…): "
            "another model, checkpoint, fine-tune or dtype; its predictions may be off",
            stacklevel=3,
        )


def load_published(
    model: PreTrainedModel,
    name: str | None = None,
    *,
    repo_id: str | None = None,
    repo_type: str | None = None,
    revision: str | None = None,
) -> Lens:
    """Load a published lens for ``model`` (the Space ``AlignmentResearch/tuned-lens``).

    Args:
        model: The model the lens is for.
        name: Lens name under ``lens/`` (default: ``model.config.name_or_path``). For
            an embedded model (``"lensbook-tiny"``), or a local model folder with a
            ``lens/`` subfolder, the lens shipped with it is used.
        repo_id: Hub repository, or a local folder with the same ``lens/<name>/`` layout.
            Default: ``$TUNED_LENS_REPO_ID`` or ``AlignmentResearch/tuned-lens``.
        repo_type: ``"space"``, ``"model"`` or ``"dataset"``; default
            ``$TUNED_LENS_REPO_TYPE`` or ``"space"``.
        revision: Hub revision.
    """
    name = name or model.config.name_or_path
    if not name:
        raise ValueError("the model has no name (its config.name_or_path is empty): "
                         "pass the lens's name, e.g. load_published(model, 'gpt2')")
    shipped = Path(EMBEDDED_MODELS.get(name, name)) / "lens"
    if repo_id is None and shipped.is_dir():
        return load_lens(shipped, model)
    repo_id = repo_id or os.environ.get("TUNED_LENS_REPO_ID") or DEFAULT_REPO_ID
    if Path(repo_id).is_dir():
        return load_lens(Path(repo_id) / "lens" / name, model)
    repo_type = repo_type or os.environ.get("TUNED_LENS_REPO_TYPE") or DEFAULT_REPO_TYPE
    try:
        paths = [hf_hub_download(repo_id, f"lens/{name}/{file}", repo_type=repo_type,
                                 revision=revision) for file in (CONFIG_FILE, TORCH_FILE)]
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise LensFileError(
            f"no published lens lens/{name}/ in the {repo_type} {repo_id}"
            f"{f' at revision {revision}' if revision else ''}: pass name= for another "
            "name, or train one with lensbook.train_lens"
        ) from err
    return build_lens(model, read_config(Path(paths[0])), read_torch(Path(paths[1])))
