"""The Jacobian lens (J-lens): each layer read through the model's average Jacobian.

With ``h_l`` the residual stream after ``l`` blocks and ``h_final`` the residual stream
that enters the final norm (Gurnee et al. 2026)::

    logits_l = unembed(J_l h_l),    J_l = E[∂h_final / ∂h_l]

``J_l`` is *estimated* over a corpus (:mod:`lensbook.core.jacobian_fit`), not trained on
a loss: the gradient at a source position is summed over the target positions after it
and averaged over source positions. ``J_l = I`` is the logit lens, through the same head
code (:class:`~lensbook.core.head.Unembed`) as every other lens.

Files: lensbook's lens folder (``config.json`` + ``params.safetensors``/``params.pt``
holding ``"J"`` of shape ``(layers, d, d)``), and the official package's single torch
file (``J``, ``n_prompts``, ``source_layers``, ``d_model``), read by
:func:`load_jacobian_artifact` with ``weights_only=True`` and written by
:func:`save_jacobian_artifact`.

Layer numbers: lensbook's read point ``i`` is ``hidden_states[i]``, the residual stream
after ``i`` blocks (0 = the embeddings). The official artifacts number the *output of
block* ``l``, i.e. ``hidden_states[l + 1]``, for ``l = 0 .. L-2`` (the last block's
output needs no lens), so their layer ``l`` is lensbook's ``l + 1``; they have no
matrix for the embeddings, where a loaded lens keeps the identity (the logit lens).
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel

from lensbook.core.head import Unembed
from lensbook.core.lens import Lens, register_lens
from lensbook.core.model import num_layers

LENS_TYPE = "jacobian_lens"


@dataclass
class JacobianLensConfig:
    """What a saved Jacobian lens records.

    Attributes:
        base_model_name_or_path: The model the lens was fitted for.
        d_model: Its hidden size.
        num_hidden_layers: Its number of blocks ``L`` (one ``J_l`` per layer ``0..L-1``).
        n_prompts: Prompts the estimate averaged over (0 for the identity).
        lens_type: Always ``"jacobian_lens"``.
        unembed_hash: The reference package's weak hash of the head (filled on save).
        unembed_sha256: lensbook's content hash of the head (filled on save).
        training: Provenance of the fit: data, prompts, tokens, dtype, seconds, whether
            it stopped early, library versions.
    """

    base_model_name_or_path: str
    d_model: int
    num_hidden_layers: int
    n_prompts: int = 0
    lens_type: str = LENS_TYPE
    unembed_hash: str | None = None
    unembed_sha256: str | None = None
    training: dict | None = field(default=None)

    def to_dict(self) -> dict:
        """The JSON-ready dict (``training`` only when set)."""
        data = asdict(self)
        if self.training is None:
            del data["training"]
        return data


@register_lens
class JacobianLens(Lens):
    """Decode layer ``l`` as ``unembed(J_l h_l)``; ``J_l`` starts at the identity.

    Args:
        unembed: The model's output head.
        config: Shapes and provenance.

    Example:
        >>> lens = JacobianLens.fit(model, ids[:200])  # doctest: +SKIP
        >>> lens(hidden_states[3], 3).shape  # (..., vocab)  # doctest: +SKIP
    """

    lens_type = LENS_TYPE
    config_class = JacobianLensConfig
    label = "Jacobian lens"

    def __init__(self, unembed: Unembed, config: JacobianLensConfig):
        super().__init__(unembed, config.num_hidden_layers)
        if config.d_model != unembed.d_model:
            raise ValueError(f"lens d_model={config.d_model} does not fit the model's hidden "
                             f"size {unembed.d_model}")
        self.config = config
        eye = torch.eye(config.d_model).expand(config.num_hidden_layers, -1, -1)
        # A buffer, not a parameter: J is estimated, never trained by a loss.
        self.register_buffer("J", eye.clone())

    @classmethod
    def from_config(cls, unembed: Unembed, config: JacobianLensConfig) -> JacobianLens:
        """An identity lens of this shape (what :func:`~lensbook.load_lens` fills)."""
        return cls(unembed, config)

    @classmethod
    def from_model(cls, model: PreTrainedModel, *, sublayers: bool = False) -> JacobianLens:
        """The identity J-lens for ``model``: decodes exactly like the logit lens.

        Raises:
            NotImplementedError: With ``sublayers=True``: J is estimated only at the
                residual stream after each block, as in the official package.
        """
        if sublayers:
            raise NotImplementedError("the Jacobian lens reads the residual stream after each "
                                      "block only; J at mid-block points is not estimated")
        text = model.config.get_text_config()
        config = JacobianLensConfig(model.config.name_or_path, text.hidden_size,
                                    text.num_hidden_layers)
        return cls(Unembed(model), config).to(model.device)

    @classmethod
    def fit(cls, model: PreTrainedModel, prompts, **options) -> JacobianLens:
        """Estimate ``J_l`` for every layer on ``prompts`` (token ids).

        See :func:`lensbook.core.jacobian_fit.fit_jacobian_lens` for the options
        (prompt budget, early stop, progress bar, provenance).
        """
        from lensbook.core.jacobian_fit import fit_jacobian_lens

        return fit_jacobian_lens(model, prompts, **options)

    def transform_hidden(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """``J_layer h`` (a matrix-vector product per position)."""
        self._check_index(layer)
        J = self.J[layer]
        return (h.to(J.dtype) @ J.T).to(h.dtype)

    def state(self) -> dict[str, torch.Tensor]:
        """``{"J": (layers, d, d)}``."""
        return {"J": self.J}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load ``{"J": ...}``; raises ``RuntimeError`` on other keys or shapes."""
        if set(state) != {"J"} or state["J"].shape != self.J.shape:
            shapes = {k: tuple(v.shape) for k, v in state.items()}
            raise RuntimeError(f"expected {{'J': {tuple(self.J.shape)}}}, got {shapes}")
        self.J.copy_(state["J"])

    def trainable_parameters(self) -> list[nn.Parameter]:
        """None: ``J`` is estimated by :meth:`fit`, not trained."""
        return []


def load_jacobian_artifact(path: str | Path, model: PreTrainedModel) -> JacobianLens:
    """Load the official package's artifact (a torch file) as a :class:`JacobianLens`.

    The file holds ``J`` (``{layer: (d, d)}``, or one ``(len(source_layers), d, d)``
    tensor), ``n_prompts``, ``source_layers`` and ``d_model``, with layers numbered as
    block outputs (official layer ``l`` is lensbook's ``l + 1``; see the module's
    docstring). It is read with ``weights_only=True``, which refuses any object other
    than tensors and plain containers. Layers the file lacks keep the identity.

    Raises:
        lensbook.LensFileError: The file is unreadable, unsafe or lacks a field.
        ValueError: Its ``d_model`` or layers do not fit ``model``.
    """
    raw = _read_artifact(path)
    matrices = raw["J"]
    if isinstance(matrices, dict):
        layers = sorted(int(layer) for layer in matrices)
        J = torch.stack([torch.as_tensor(matrices[k]) for k in sorted(matrices, key=int)])
    else:
        layers, J = [int(x) for x in raw["source_layers"]], torch.as_tensor(matrices)
    _check_fits(model, int(raw["d_model"]), layers, tuple(J.shape), path)
    lens = JacobianLens.from_model(model)
    lens.config.n_prompts = int(raw.get("n_prompts", 0))
    lens.config.training = {"source": str(path), "format": "official artifact",
                            "source_layers": layers}
    lens.J[[layer + 1 for layer in layers]] = J.float().to(lens.J.device)
    return lens


def save_jacobian_artifact(lens: JacobianLens, path: str | Path,
                           dtype: torch.dtype = torch.float32) -> Path:
    """Write ``lens`` as the official package's torch file (block outputs ``0 .. L-2``)."""
    layers = list(range(lens.num_layers - 1))
    torch.save({"J": {layer: lens.J[layer + 1].detach().cpu().to(dtype) for layer in layers},
                "n_prompts": lens.config.n_prompts, "source_layers": layers,
                "d_model": lens.config.d_model}, path)
    return Path(path)


def _read_artifact(path: str | Path) -> dict:
    from lensbook.core.files import LensFileError

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise LensFileError(f"refusing to load {path}: it holds objects other than tensors "
                            f"({err})") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise LensFileError(f"cannot read {path} (truncated or corrupt?): {err}") from err
    missing = {"J", "source_layers", "d_model"} - set(raw if isinstance(raw, dict) else ())
    if missing:
        raise LensFileError(f"{path} is not a Jacobian-lens artifact: missing {sorted(missing)}")
    return raw


def _check_fits(model: PreTrainedModel, d_model: int, layers: list[int], shape: tuple,
                path) -> None:
    hidden, depth = model.config.get_text_config().hidden_size, num_layers(model)
    if d_model != hidden:
        raise ValueError(f"{path}: J-lens d_model={d_model} does not fit "
                         f"{type(model).__name__} (hidden_size={hidden})")
    if any(not 0 <= layer < depth - 1 for layer in layers):
        raise ValueError(f"{path}: source layers {layers} do not fit "
                         f"{type(model).__name__} (block outputs 0..{depth - 2})")
    if shape != (len(layers), d_model, d_model):
        raise ValueError(f"{path}: J has shape {shape}, expected "
                         f"({len(layers)}, {d_model}, {d_model})")
