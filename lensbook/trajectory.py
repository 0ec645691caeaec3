"""Run lenses over prompts: per-layer predictions whose last row is the model's output.

A :class:`Trajectory` is the plain record of one sequence seen through one lens:
log-probabilities for every layer and position, the input tokens and the true next
tokens. Statistics that compare layers (entropy, KL to the output, rank of the next
token, prediction depth…) are short methods on top of :mod:`lensbook.metrics`;
those that compare two trajectories live in :mod:`lensbook.statistics`.

Example:
    >>> model, tokenizer = lensbook.load_model()  # doctest: +SKIP
    >>> lens = lensbook.LogitLens.from_model(model)  # doctest: +SKIP
    >>> traj = trajectory(model, tokenizer, lens, "The for statement")  # doctest: +SKIP
    >>> traj.entropy().shape  # (layers + 1, seq)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from lensbook import metrics
from lensbook.lenses import LogitLens
from lensbook.tokens import (
    cached_vocabulary,
    check_lengths,
    encode_prompts,
    is_byte_level,
    pad_right,
    readable_token,
)

NO_TARGET = -100  # the target of the last position (and of padding), as in Hugging Face


@torch.inference_mode()
def layer_logits(
    model: PreTrainedModel,
    lens: LogitLens,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Decode every layer of ``model`` on ``input_ids`` with ``lens``.

    Args:
        model: The causal LM.
        lens: A :class:`~lensbook.lenses.LogitLens` or ``TunedLens`` for ``model``.
        input_ids: Token ids, shape ``(batch, seq)``.
        attention_mask: Optional mask of shape ``(batch, seq)`` (1 = real token).

    Returns:
        Logits of shape ``(L + 1, batch, seq, vocab)``: rows ``0..L-1`` from the lens,
        row ``L`` the model's own logits.
    """
    return _layer_logits_many(model, [lens], input_ids, attention_mask)[0]


@torch.inference_mode()
def _layer_logits_many(
    model: PreTrainedModel,
    lenses: Sequence[LogitLens],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    last_positions: int | None = None,
) -> list[torch.Tensor]:
    """One forward pass, decoded by each lens: a list of ``(L + 1, batch, seq, vocab)``.

    With ``last_positions`` only each row's last real tokens (by ``attention_mask``,
    right padding) are decoded, and ``seq`` is ``last_positions``.
    """
    out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    hidden, logits = out.hidden_states, out.logits
    if last_positions is not None:
        # Right padding: row b's last tokens sit at columns len_b - last .. len_b - 1.
        cols = attention_mask.sum(1, keepdim=True) - last_positions
        cols = cols + torch.arange(last_positions, device=cols.device)
        at = (torch.arange(input_ids.shape[0], device=cols.device)[:, None], cols)
        hidden, logits = [h[at] for h in hidden], logits[at]
    return [torch.cat([lens.decode_all(hidden).to(logits.dtype), logits[None]])
            for lens in lenses]


@dataclass
class Trajectory:
    """One sequence seen through one lens, layer by layer.

    Attributes:
        log_probs: Float32 log-probabilities, ``(layers + 1, seq, vocab)``; row ``layers``
            is the model's own output.
        input_ids: The sequence's token ids, ``(seq,)``.
        targets: The true next token at each position, ``(seq,)``; ``-100`` where there
            is none (the last position).
        tokens: The input tokens as the tokenizer stores them (``"Ġthe"``).
        vocab: The stored token string of every id the model can predict.
        lens_label: Which lens produced the rows (``"logit lens"``, ``"tuned lens"``).
        byte_level: Whether ``vocab`` is byte-level BPE (for readable labels).
    """

    log_probs: torch.Tensor
    input_ids: torch.Tensor
    targets: torch.Tensor
    tokens: list[str]
    vocab: Sequence[str]
    lens_label: str
    byte_level: bool | None = None

    @property
    def num_layers(self) -> int:
        """``L``, the number of blocks; rows are layers ``0..L`` with ``L`` the output."""
        return self.log_probs.shape[0] - 1

    def __len__(self) -> int:
        return self.log_probs.shape[1]

    # Labels -------------------------------------------------------------------------
    def label(self, token_id: int, max_chars: int | None = None) -> str:
        """A readable label for any token id (``Ġ`` as ``␣``, ``Ċ`` as a visible newline)."""
        return readable_token(self.vocab[token_id], max_chars=max_chars,
                              byte_level=self.byte_level)

    def input_labels(self, max_chars: int | None = None) -> list[str]:
        """Readable labels of the input tokens, ``seq`` of them."""
        return [self.label(int(i), max_chars) for i in self.input_ids]

    def target_labels(self, max_chars: int | None = None) -> list[str]:
        """Readable labels of the true next tokens (``""`` where there is none)."""
        return ["" if t < 0 else self.label(int(t), max_chars) for t in self.targets]

    def layer_names(self) -> list[str]:
        """``["0", "1", …, "L-1", "output"]``: what each row is."""
        return [str(layer) for layer in range(self.num_layers)] + ["output"]

    # Statistics, each (layers + 1, seq) -------------------------------------------------
    def top1(self) -> torch.Tensor:
        """The most likely token id at each layer and position, ``(layers + 1, seq)``."""
        return self.log_probs.argmax(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy of each layer's prediction in nats, ``(layers + 1, seq)``."""
        return metrics.entropy(self.log_probs)

    def cross_entropy(self) -> torch.Tensor:
        """``-log q_l(next token)`` in nats, ``(layers + 1, seq)``; ``nan`` without target."""
        return metrics.cross_entropy(self.log_probs, self.targets.expand(self.log_probs.shape[:-1]))

    def kl_to_output(self) -> torch.Tensor:
        """``KL(p_output ‖ q_l)`` in nats, ``(layers + 1, seq)``; zero on the output row."""
        return metrics.kl_divergence(self.log_probs[-1], self.log_probs)

    def max_probability(self) -> torch.Tensor:
        """Probability of the top-1 token, ``(layers + 1, seq)``."""
        return metrics.max_probability(self.log_probs)

    def rank(self) -> torch.Tensor:
        """1-based rank of the next token, ``(layers + 1, seq)``; ``0`` without target."""
        return metrics.target_rank(self.log_probs, self.targets.expand(self.log_probs.shape[:-1]))

    def top_k(self, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` most likely tokens: probabilities and ids, each ``(layers + 1, seq, k)``."""
        logp, ids = self.log_probs.topk(min(k, self.log_probs.shape[-1]), dim=-1)
        return logp.exp(), ids

    def prediction_depth(self) -> torch.Tensor:
        """First layer from which the top-1 token stays the output's top-1, ``(seq,)``.

        ``0`` means even the embeddings predict the final token; ``L`` means only
        the output does.
        """
        agrees = self.top1() == self.top1()[-1]  # (layers + 1, seq), last row all True
        # A layer counts when it and every layer above it agree with the output.
        stays = agrees.flip(0).cumprod(0).flip(0)
        return self.num_layers + 1 - stays.sum(0)


def context_length(model: PreTrainedModel) -> int | None:
    """The longest sequence the model takes (``n_positions`` and the like), if it has one."""
    config = model.config.get_text_config()
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def trajectory(
    model: PreTrainedModel,
    tokenizer,
    lens: LogitLens,
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
    texts = [prompts] if isinstance(prompts, str) else list(prompts)
    result = trajectories_by_lens(model, tokenizer, {"": lens}, texts, prepend_bos=prepend_bos)
    return result[""][0] if isinstance(prompts, str) else result[""]


def trajectories_by_lens(
    model: PreTrainedModel,
    tokenizer,
    lenses: Mapping[str, LogitLens],
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
            :func:`from_ids`).

    Returns:
        For each name in ``lenses``, one :class:`Trajectory` per prompt, labelled with
        that name.
    """
    seqs = encode_prompts(tokenizer, prompts, prepend_bos)
    return from_ids(model, lenses, seqs, tokenizer, last_positions=last_positions)


def from_ids(
    model: PreTrainedModel,
    lenses: Mapping[str, LogitLens],
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
            _one(log_probs[:, b], seq, vocab, name or lens.label, byte_level, last_positions)
            for b, seq in enumerate(sequences)
        ]
    return result


def _one(log_probs, seq, vocab, label, byte_level, last_positions=None) -> Trajectory:
    """The trajectory of ``seq``, or of its last ``last_positions`` tokens."""
    input_ids = torch.tensor(list(seq))
    targets = torch.cat([input_ids[1:], torch.tensor([NO_TARGET])])
    keep = slice(-(last_positions or len(seq)), None)
    input_ids, targets = input_ids[keep], targets[keep]
    log_probs = log_probs[:, : len(input_ids)]
    tokens = [vocab[i] for i in input_ids.tolist()]
    return Trajectory(log_probs.clone(), input_ids, targets, tokens, vocab, label, byte_level)

