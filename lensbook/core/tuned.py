"""The tuned lens (and the bias-only lens): one learned affine translator per layer.

With ``h_l`` the residual stream after ``l`` blocks (``hidden_states[l]``):

* tuned lens:  ``logits_l = unembed(h_l + A_l h_l + b_l)``, one affine translator per
  layer ``0 .. L-1``, initialised at zero so an untrained tuned lens *is* the logit lens.
* bias-only lens: only ``b_l`` is trained (the paper's "debiased logit lens").

The last layer needs no lens: ``hidden_states[L]`` is already normalised in Hugging
Face models, and the model's own logits are the output row of a trajectory.
Saving and loading live in :mod:`lensbook.core.files`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from transformers import PreTrainedModel

from lensbook.core.head import Unembed
from lensbook.core.lens import Lens, register_lens
from lensbook.core.sublayer import check_mid_points

LENS_TYPE = "linear_tuned_lens"


@dataclass
class TunedLensConfig:
    """What a saved tuned lens records (the reference package's ``config.json``).

    Attributes:
        base_model_name_or_path: The model the lens was trained for.
        d_model: Its hidden size.
        num_hidden_layers: Its number of blocks ``L`` (= number of translators).
        bias: Whether translators have a bias ``b_l`` (default True, as in the paper).
        base_model_revision: Hub revision of the base model, if known.
        unembed_hash: The reference package's weak hash of the unembedding
            (``Unembed.reference_hash``), kept so the reference loads our lenses quietly;
            filled in by ``save_lens`` when unset (hashing a large head takes seconds).
        lens_type: Always ``"linear_tuned_lens"`` (the reference's name).
        unembed_sha256: lensbook's content hash of the whole output head
            (``Unembed.content_hash``), which changes when any weight changes.
        bias_only: Only ``b_l`` is trained and ``A_l`` stays zero (lensbook extension,
            written to ``config.json`` only when true).
        sublayers: One translator per read point ``0, 0.attn, 1, 1.attn, …`` (``2L``
            of them, the ``"attn"`` points after each block's attention) instead of one
            per layer (lensbook extension, written to ``config.json`` only when true;
            the reference package cannot load such a lens).
        training: Free-form record of how the lens was trained (data, tokens, steps);
            a lensbook extension written only when set.
    """

    base_model_name_or_path: str
    d_model: int
    num_hidden_layers: int
    bias: bool = True
    base_model_revision: str | None = None
    unembed_hash: str | None = None
    lens_type: str = LENS_TYPE
    unembed_sha256: str | None = None
    bias_only: bool = False
    sublayers: bool = False
    training: dict | None = field(default=None)

    def to_dict(self) -> dict:
        """The JSON-ready dict; lensbook-only fields appear only when set."""
        data = asdict(self)
        if self.unembed_sha256 is None:
            del data["unembed_sha256"]
        for flag in ("bias_only", "sublayers"):
            if not data[flag]:
                del data[flag]
        if self.training is None:
            del data["training"]
        return data


@register_lens
class TunedLens(Lens):
    """A logit lens preceded by one learned affine translator per layer.

    Args:
        unembed: The model's output head.
        config: Shapes and provenance of the lens.

    The reference package's ``"linear_tuned_lens"``: its files (``"0.weight"``,
    ``"0.bias"``, … in ``params.pt``) load and save unchanged.

    Example:
        >>> lens = TunedLens.from_model(model)  # zero translators: equals the logit lens
        ... # doctest: +SKIP
    """

    lens_type = LENS_TYPE
    config_class = TunedLensConfig

    def __init__(self, unembed: Unembed, config: TunedLensConfig):
        super().__init__(unembed, config.num_hidden_layers, config.sublayers)
        if config.bias_only and not config.bias:
            raise ValueError("a bias-only lens needs bias=True")
        if config.d_model != unembed.d_model:
            raise ValueError(
                f"lens d_model={config.d_model} does not fit the model's hidden size "
                f"{unembed.d_model}"
            )
        self.config = config
        self.translators = nn.ModuleList(
            nn.Linear(config.d_model, config.d_model, bias=config.bias)
            for _ in self.read_points()
        )
        for translator in self.translators:
            nn.init.zeros_(translator.weight)
            if config.bias:
                nn.init.zeros_(translator.bias)
            # A bias-only lens keeps A_l frozen at zero: the "debiased logit lens".
            translator.weight.requires_grad_(not config.bias_only)

    @property
    def label(self) -> str:
        """A human-readable name: ``"tuned lens"`` or ``"bias-only lens"``."""
        return "bias-only lens" if self.config.bias_only else "tuned lens"

    @classmethod
    def from_config(cls, unembed: Unembed, config: TunedLensConfig) -> TunedLens:
        """An untrained lens of this shape (what :func:`~lensbook.load_lens` fills)."""
        return cls(unembed, config)

    @classmethod
    def from_model(
        cls, model: PreTrainedModel, *, bias: bool = True, bias_only: bool = False,
        sublayers: bool = False,
    ) -> TunedLens:
        """An untrained (zero-initialised) tuned lens for ``model``.

        With ``sublayers=True`` it also has a translator for each block's stream after
        attention (raises ``NoMidPointError`` on parallel-attention models).
        """
        if sublayers:
            check_mid_points(model)
        unembed = Unembed(model)
        text_config = model.config.get_text_config()
        config = TunedLensConfig(
            base_model_name_or_path=model.config.name_or_path,
            d_model=text_config.hidden_size,
            num_hidden_layers=text_config.num_hidden_layers,
            bias=bias,
            bias_only=bias_only,
            sublayers=sublayers,
        )
        return cls(unembed, config).to(model.device)

    def transform_hidden(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """``h + A_layer h + b_layer`` (``layer`` indexes :meth:`read_points`).

        The translator is added residually (rather than learning ``A' h + b`` with
        ``A'`` initialised to the identity) so that weight decay pulls the lens
        towards the logit lens, not towards the zero map.
        """
        self._check_index(layer)
        translator = self.translators[layer]
        return h + translator(h.to(translator.weight.dtype)).to(h.dtype)

    def state(self) -> dict[str, torch.Tensor]:
        """Translator weights under the reference's keys (``"0.weight"``, ``"0.bias"``…)."""
        return self.translators.state_dict()

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load translator weights saved by :meth:`state`."""
        self.translators.load_state_dict(state)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters an optimiser should update (biases only for a bias-only lens)."""
        return [p for p in self.translators.parameters() if p.requires_grad]
