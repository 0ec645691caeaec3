"""Load a causal language model, and run it: the forward pass every lens reads from.

:func:`load_model` takes a Hub name, a local folder or the short name of an embedded
model. :func:`hidden_states` is the one forward pass that training and analysis use
(no gradients, no output head); :func:`run_model` also returns the model's logits, the
last row of every trajectory. A :class:`ReadPoint` names a place in the residual stream
that a lens reads; :func:`read` picks it out of the hidden states.

Example:
    >>> model, tokenizer = load_model("lensbook-tiny")  # doctest: +SKIP
    >>> hs = hidden_states(model, ids)  # L + 1 tensors (batch, seq, d)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lensbook.core.errors import UnsupportedModelError
from lensbook.core.parts import check_decoder_only
from lensbook.core.sublayer import capture_mid
from lensbook.embedded.families import DEFAULT_MODEL, EMBEDDED_MODELS

#: Read-point sites. ``"resid"``: the residual stream after ``layer`` blocks
#: (``hidden_states[layer]``; layer 0 is the embedding output). ``"attn"``: inside block
#: ``layer``, after its attention and before its MLP (a sub-layer lens, read by hooks;
#: see :mod:`lensbook.core.sublayer` for the architectures that have it).
SITES = ("resid", "attn")


@dataclass(frozen=True)
class ReadPoint:
    """A place in the model's residual stream that a lens reads.

    Attributes:
        layer: Block index: for ``site="resid"`` the stream *after* ``layer`` blocks
            (0 = the embeddings), for ``site="attn"`` block ``layer``'s mid-point.
        site: One of :data:`SITES`.
    """

    layer: int
    site: str = "resid"

    def __post_init__(self):
        if self.site not in SITES:
            raise ValueError(f"unknown read-point site {self.site!r}; choose one of {SITES}")

    @property
    def name(self) -> str:
        """Row label in figures and tables: ``"3"``, or ``"3.attn"`` for a mid-block point."""
        return str(self.layer) if self.site == "resid" else f"{self.layer}.{self.site}"


def residual_points(num_layers: int) -> list[ReadPoint]:
    """The residual stream after ``0 .. num_layers - 1`` blocks: what the tuned lens reads."""
    return [ReadPoint(layer) for layer in range(num_layers)]


def sublayer_points(num_layers: int) -> list[ReadPoint]:
    """``0, 0.attn, 1, 1.attn, …, L-1, L-1.attn``: the stream before and inside each block."""
    return [ReadPoint(layer, site) for layer in range(num_layers) for site in SITES]


class Hidden(tuple):
    """A forward pass's ``L + 1`` hidden states, plus the mid-block states it captured.

    It is the tuple Hugging Face returns (``hidden[l]`` is the stream after ``l``
    blocks); ``mid[l]`` is block ``l``'s stream after attention, for the blocks asked
    for (see :func:`hidden_states`).
    """

    mid: dict[int, torch.Tensor]

    def __new__(cls, resid: Iterable[torch.Tensor], mid: dict[int, torch.Tensor] | None = None):
        """Wrap ``resid`` (the ``L + 1`` states) and ``mid`` (layer -> state)."""
        self = super().__new__(cls, resid)
        self.mid = dict(mid or {})
        return self

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Hidden:
        """Apply ``fn`` (a reshape, a move, a slice of tokens) to every state."""
        return Hidden([fn(h) for h in self], {i: fn(h) for i, h in self.mid.items()})


def read(hidden: Sequence[torch.Tensor], point: ReadPoint) -> torch.Tensor:
    """The hidden state at ``point`` from a forward pass's hidden states.

    Raises:
        KeyError: For a mid-block (``"attn"``) point that the forward pass did not
            capture (pass the lens's ``read_points()`` to :func:`hidden_states`).
    """
    if point.site == "resid":
        return hidden[point.layer]
    mid = getattr(hidden, "mid", {})
    if point.layer not in mid:
        raise KeyError(
            f"read point {point.name} was not captured: run the model with "
            f"hidden_states(model, ids, points=lens.read_points()) (or run_model with points)"
        )
    return mid[point.layer]


def _mid_layers(points: Iterable[ReadPoint]) -> list[int]:
    return sorted({p.layer for p in points if p.site == "attn"})


def _forward(model, call, points: Iterable[ReadPoint]):
    """Run ``call()`` with hooks on the blocks whose mid-points are in ``points``."""
    layers = _mid_layers(points)
    with capture_mid(model, layers) if layers else nullcontext({}) as mid:
        out = call()
    shape = out.hidden_states[0].shape
    return out, Hidden(out.hidden_states, {i: h.view(shape) for i, h in mid.items()})


def hidden_states(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    points: Iterable[ReadPoint] = (),
) -> Hidden:
    """The model's ``L + 1`` hidden states, without gradients and without its logits.

    The base model is called without the output head: callers that need the final
    distribution recompute it block by block from ``hidden_states[L]``, so the
    full-vocabulary logits of a whole batch are never materialised. Mid-block
    (``"attn"``) points among ``points`` are captured by hooks into ``.mid``.
    """
    with torch.no_grad():
        return _forward(model, lambda: model.base_model(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
        ), points)[1]


def run_model(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    points: Iterable[ReadPoint] = (),
) -> tuple[Hidden, torch.Tensor]:
    """One full forward pass without gradients: ``(hidden_states, logits)``."""
    with torch.no_grad():
        out, hidden = _forward(model, lambda: model(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
        ), points)
    return hidden, out.logits


def context_length(model: PreTrainedModel) -> int | None:
    """The longest sequence the model takes (``n_positions`` and the like), if it has one."""
    config = model.config.get_text_config()
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def num_layers(model: PreTrainedModel) -> int:
    """The model's number of blocks ``L``."""
    return model.config.get_text_config().num_hidden_layers


def load_model(
    name_or_path: str = DEFAULT_MODEL,
    *,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    device_map: str | dict | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, in evaluation mode.

    Args:
        name_or_path: A Hugging Face Hub name (``"gpt2"``), a local folder, or the
            short name of an embedded model (``"lensbook-tiny"``, the default).
        dtype: Weight dtype, e.g. ``torch.bfloat16`` or ``"auto"``; ``None`` keeps fp32.
        device: Where to put the model (``"cpu"``, ``"cuda"``); ignored with ``device_map``.
        device_map: Passed to ``from_pretrained`` to spread a large model over devices.
        revision: Hub revision (branch, tag or commit).
        trust_remote_code: Run code shipped with the model. Off unless you ask for it.

    Returns:
        ``(model, tokenizer)``, the model in ``eval()`` mode.

    Raises:
        UnsupportedModelError: An encoder-decoder model (T5, BART…), or one that
            transformers has no causal-LM class for; checked before any weight is read.
        ValueError: An unknown dtype, or a CUDA device where torch sees none.
    """
    source = str(EMBEDDED_MODELS.get(name_or_path, name_or_path))
    if device is not None and torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but torch sees no CUDA GPU: "
                         "use device='cpu' (or install a CUDA build of torch)")
    _check_causal_lm(source, name_or_path, revision, trust_remote_code)
    # An explicit float32 default: transformers 5 otherwise loads the checkpoint's dtype
    # (float16 for Pythia and OPT), which is slow on a CPU and not what we document.
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code,
              "dtype": torch.float32 if dtype is None else _as_dtype(dtype)}
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if device is not None and device_map is None:
        model = model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(
        source, revision=revision, trust_remote_code=trust_remote_code
    )
    if name_or_path in EMBEDDED_MODELS:
        model.config.name_or_path = name_or_path
    return model.eval(), tokenizer


def _check_causal_lm(source: str, name: str, revision: str | None, trust_remote_code: bool):
    """Refuse, from its config alone, a model that is not a decoder-only causal LM."""
    config = AutoConfig.from_pretrained(source, revision=revision,
                                        trust_remote_code=trust_remote_code)
    check_decoder_only(config, name)
    known = AutoModelForCausalLM._model_mapping  # config class -> causal-LM class
    if type(config) not in known and not getattr(config, "auto_map", None):
        raise UnsupportedModelError(
            f"{name} is a {config.model_type!r} model, which transformers has no causal "
            "language-model class for; lensbook reads decoder-only causal LMs (GPT-2, "
            "Pythia, Llama, ...): use one of those"
        )


def _as_dtype(dtype: torch.dtype | str) -> torch.dtype | str:
    """``"bfloat16"`` -> ``torch.bfloat16``; ``"auto"`` and dtypes pass through."""
    if isinstance(dtype, str) and dtype != "auto":
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}: use e.g. 'float32', 'bfloat16' or 'auto'")
        return getattr(torch, dtype)
    return dtype
