"""Run lenses over prompts: per-layer predictions whose last row is the model's output.

One forward pass of the model (:func:`lensbook.core.model.run_model`) is decoded by
each lens at its read points; the model's own logits are appended as the last row.

Example:
    >>> model, tokenizer = lensbook.load_model()  # doctest: +SKIP
    >>> lens = lensbook.LogitLens.from_model(model)  # doctest: +SKIP
    >>> traj = trajectory(model, tokenizer, lens, "The for statement")  # doctest: +SKIP
    >>> traj.log_probs.shape  # (layers + 1, seq, vocab)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from transformers import PreTrainedModel

from lensbook.core.errors import InputError
from lensbook.core.guards import check_finite, check_ids, check_lens_fits
from lensbook.core.lens import Lens
from lensbook.core.model import context_length, run_model
from lensbook.core.parts import check_model
from lensbook.core.tokens import (
    cached_vocabulary,
    check_lengths,
    encode_prompts,
    is_byte_level,
    pad_right,
)
from lensbook.core.trajectory import NO_TARGET, Trajectory


@torch.inference_mode()
def layer_logits(
    model: PreTrainedModel,
    lens: Lens,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Decode every layer of ``model`` on ``input_ids`` with ``lens``.

    Args:
        model: The causal LM.
        lens: Any lens for ``model`` (:class:`~lensbook.core.lens.Lens`).
        input_ids: Token ids, shape ``(batch, seq)``.
        attention_mask: Optional mask of shape ``(batch, seq)`` (1 = real token).

    Returns:
        Logits of shape ``(L + 1, batch, seq, vocab)``: rows ``0..L-1`` from the lens,
        row ``L`` the model's own logits.

    Raises:
        InputError: Empty ids, ids longer than the context or outside the vocabulary, or
            a lens for another model.
        NonFiniteModelError: The model's logits are NaN or infinite.
    """
    return _layer_logits_many(model, [lens], input_ids, attention_mask)[0]


@torch.inference_mode()
def _layer_logits_many(
    model: PreTrainedModel,
    lenses: Sequence[Lens],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    last_positions: int | None = None,
) -> list[torch.Tensor]:
    """One forward pass, decoded by each lens: a list of ``(L + 1, batch, seq, vocab)``.

    With ``last_positions`` only each row's last real tokens (by ``attention_mask``,
    right padding) are decoded, and ``seq`` is ``last_positions``.
    """
    check_ids(model, input_ids, attention_mask)
    for lens in lenses:
        check_lens_fits(model, lens)
    points = [p for lens in lenses for p in lens.read_points()]
    hidden, logits = run_model(model, input_ids, attention_mask, points)
    check_finite(model, logits, "logits", attention_mask)
    if last_positions is not None:
        # Right padding: row b's last tokens sit at columns len_b - last .. len_b - 1.
        cols = attention_mask.sum(1, keepdim=True) - last_positions
        cols = cols + torch.arange(last_positions, device=cols.device)
        at = (torch.arange(input_ids.shape[0], device=cols.device)[:, None], cols)
        hidden, logits = hidden.map(lambda h: h[at]), logits[at]
    return [torch.cat([lens.decode_all(hidden).to(logits.dtype), logits[None]])
            for lens in lenses]


def trajectory(
    model: PreTrainedModel,
    tokenizer,
    lens: Lens,
    prompts: str | Sequence[str],
    *,
    prepend_bos: bool = True,
) -> Trajectory | list[Trajectory]:
    """Run ``lens`` over one prompt (a :class:`Trajectory`) or several (a list of them).

    Several prompts run as one right-padded batch with an attention mask; each
    trajectory keeps only its own tokens, so batching does not change the result.

    Args:
        model: The causal LM.
        tokenizer: Its tokenizer.
        lens: A logit or tuned lens for ``model``.
        prompts: One text, or a list of texts.
        prepend_bos: Put the tokenizer's BOS token first (when it has one), so that the
            first real token has a prediction too.

    Raises:
        ValueError: For an empty prompt, or one longer than the model's context.
    """
    if not isinstance(prompts, str) and not (
            isinstance(prompts, Sequence) and all(isinstance(p, str) for p in prompts)):
        raise TypeError(f"prompts must be a string or a list of strings, got {prompts!r:.80}")
    texts = [prompts] if isinstance(prompts, str) else list(prompts)
    result = trajectories_by_lens(model, tokenizer, {"": lens}, texts, prepend_bos=prepend_bos)
    return result[""][0] if isinstance(prompts, str) else result[""]


def trajectories_by_lens(
    model: PreTrainedModel,
    tokenizer,
    lenses: Mapping[str, Lens],
    prompts: Sequence[str],
    *,
    prepend_bos: bool = True,
    last_positions: int | None = None,
) -> dict[str, list[Trajectory]]:
    """Run several lenses over the same prompts with one forward pass of the model.

    Args:
        model: The causal LM.
        tokenizer: Its tokenizer.
        lenses: Name -> lens.
        prompts: The texts.
        prepend_bos: Put the tokenizer's BOS token first.
        last_positions: Decode only each prompt's last this many tokens (see
            :func:`trajectories_from_ids`).

    Returns:
        For each name in ``lenses``, one :class:`Trajectory` per prompt, labelled with
        that name.
    """
    seqs = encode_prompts(tokenizer, prompts, prepend_bos)
    return trajectories_from_ids(model, lenses, seqs, tokenizer, last_positions=last_positions)


def trajectories_from_ids(
    model: PreTrainedModel,
    lenses: Mapping[str, Lens],
    sequences: Sequence[Sequence[int]],
    tokenizer=None,
    *,
    last_positions: int | None = None,
) -> dict[str, list[Trajectory]]:
    """Trajectories of already-tokenised sequences (lengths may differ).

    Each trajectory's ``lens_label`` is its name in ``lenses``, or the lens's own
    ``label`` where the name is ``""``. Without a tokenizer, tokens are labelled by
    id (``"#17"``). With ``last_positions``, each trajectory holds only the last this
    many tokens of its sequence (same forward pass, far fewer decodings into the
    vocabulary: what per-prompt features need).

    Raises:
        ValueError: For an empty sequence, one longer than the model's context, or
            ``last_positions`` outside 1 .. the shortest sequence's length.
    """
    check_model(model)
    if not lenses:
        raise InputError("no lenses given: pass e.g. {'logit lens': LogitLens.from_model(model)}")
    check_lengths(sequences, context_length(model))
    if last_positions is not None and not 1 <= last_positions <= min(map(len, sequences)):
        raise ValueError("last_positions must be between 1 and the shortest sequence's "
                         f"length, got {last_positions}")
    ids, mask = pad_right(sequences, getattr(tokenizer, "pad_token_id", None) or 0)
    device = model.device
    rows = _layer_logits_many(model, list(lenses.values()), ids.to(device), mask.to(device),
                              last_positions)
    vocab = cached_vocabulary(tokenizer, rows[0].shape[-1])
    byte_level = is_byte_level(vocab)
    result = {}
    for (name, lens), logits in zip(lenses.items(), rows, strict=True):
        log_probs = logits.float().log_softmax(-1).cpu()
        result[name] = [
            _one(log_probs[:, b], seq, vocab, name or lens.label, byte_level, last_positions,
                 [p.name for p in lens.read_points()])
            for b, seq in enumerate(sequences)
        ]
    return result


def _one(log_probs, seq, vocab, label, byte_level, last_positions, names) -> Trajectory:
    """The trajectory of ``seq``, or of its last ``last_positions`` tokens."""
    input_ids = torch.tensor(list(seq))
    targets = torch.cat([input_ids[1:], torch.tensor([NO_TARGET])])
    keep = slice(-(last_positions or len(seq)), None)
    input_ids, targets = input_ids[keep], targets[keep]
    log_probs = log_probs[:, : len(input_ids)]
    tokens = [vocab[i] for i in input_ids.tolist()]
    return Trajectory(log_probs.clone(), input_ids, targets, tokens, vocab, label, byte_level,
                      names)

