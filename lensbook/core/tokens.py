"""Prompts to token ids, and token ids to readable labels.

:func:`encode_prompts` tokenises prompts (BOS first, clear errors for empty or
over-long prompts) and :func:`pad_right` batches them.

Byte-level BPE tokenizers (GPT-2, Pythia, Llama 3, Qwen) store each byte as a
printable stand-in character: ``Ġ`` is a space, ``Ċ`` a newline, ``Ã©`` the two
bytes of ``é``. SentencePiece tokenizers (Llama 2, Gemma) write a space as ``▁``
and unknown bytes as ``<0x0A>``. :func:`readable_token` turns either into the
text the token stands for, with whitespace made visible so that it can be read
in a heatmap cell.

Example:
    >>> readable_token("Ġthe"), readable_token("▁Paris")
    ('␣the', '␣Paris')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import torch

from lensbook.core.errors import InputError

SPACE = "␣"  # U+2423 OPEN BOX, drawn by matplotlib's default font (DejaVu Sans)
SENTENCEPIECE_SPACE = "▁"  # U+2581, SentencePiece's word-boundary marker
_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode`` table (printable stand-ins for bytes)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in printable}
    shift = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + shift)] = b  # e.g. byte 0x20 (space) -> 'Ġ' (U+0120)
            shift += 1
    return table


def token_text(token: str, byte_level: bool | None = None) -> str:
    r"""The text a stored token stands for (``"Ġthe"`` -> ``" the"``, ``"▁a"`` -> ``" a"``).

    A token made only of byte stand-ins is read as bytes when they form valid UTF-8
    (``"Ã©"`` -> ``"é"``); a lone partial character becomes an escape (``"\xc3"``)
    when the token uses a shifted stand-in such as ``Ġ``, and stays as it is otherwise
    (a plain ``"é"`` in a SentencePiece vocabulary). Pass ``byte_level=True`` (see
    :func:`is_byte_level`) to always read stand-ins as bytes.
    """
    byte = _BYTE_TOKEN.match(token)
    if byte:
        return bytes([int(byte.group(1), 16)]).decode("utf-8", errors="backslashreplace")
    if SENTENCEPIECE_SPACE in token:
        return token.replace(SENTENCEPIECE_SPACE, " ")
    table = _unicode_to_byte()
    if not all(c in table for c in token):
        return token
    raw = bytes(table[c] for c in token)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        shifted = byte_level or any(ord(c) >= 256 for c in token)
        return raw.decode("utf-8", errors="backslashreplace") if shifted else token


def make_visible(text: str, space: str = SPACE) -> str:
    r"""Make whitespace and control characters visible; ``""`` becomes ``"∅"``.

    Spaces become ``space``, newlines and tabs ``\n`` and ``\t``, other control
    characters an escape such as ``\x07``.
    """
    if not text:
        return "∅"
    return "".join(_visible_char(c, space) for c in text)


def _visible_char(char: str, space: str) -> str:
    if char == " ":
        return space
    if char in _ESCAPES:
        return _ESCAPES[char]
    return char if char.isprintable() else f"\\x{ord(char):02x}"


def readable_token(
    token: str,
    space: str = SPACE,
    max_chars: int | None = None,
    byte_level: bool | None = None,
) -> str:
    """A label for one stored token: decoded, whitespace visible, optionally shortened.

    Args:
        token: The token as the tokenizer stores it (``convert_ids_to_tokens``).
        space: What to draw for a space.
        max_chars: Cut longer labels to this many characters, ending in ``…``.
        byte_level: Whether the vocabulary is byte-level BPE (``None``: guess per token).
    """
    label = make_visible(token_text(token, byte_level), space)
    if max_chars is not None and len(label) > max_chars:
        label = label[: max_chars - 1] + "…"
    return label


def is_byte_level(vocab: Iterable[str]) -> bool:
    """Whether a vocabulary is byte-level BPE: some token starts with ``Ġ`` (a space)."""
    return any(t.startswith("Ġ") for t in vocab)


def vocabulary(tokenizer, size: int) -> list[str]:
    """Stored token strings for ids ``0..size-1``.

    ``size`` is the model's vocabulary (the rows of its unembedding), which can be
    larger than the tokenizer's (Pythia pads 50277 tokens to 50304): ids without
    a token get ``"<id N>"``.
    """
    known = min(size, len(tokenizer))
    names = tokenizer.convert_ids_to_tokens(list(range(known)))
    names = [n if n is not None else f"<id {i}>" for i, n in enumerate(names)]
    return names + [f"<id {i}>" for i in range(known, size)]


def encode(tokenizer, prompt: str, prepend_bos: bool = True) -> list[int]:
    """Token ids of ``prompt``, with the tokenizer's BOS token first if it has one.

    Raises:
        ValueError: For an empty prompt.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"a prompt must be a string, got {type(prompt).__name__}")
    if not prompt:
        raise InputError("the prompt is empty: give at least one character of text")
    try:
        ids = list(tokenizer(prompt, add_special_tokens=False).input_ids)
    except Exception as err:  # tokenizers raise their own types, e.g. for unknown characters
        raise InputError(f"the tokenizer cannot encode the prompt {prompt!r:.60}: "
                         f"{' '.join(str(err).split())}; change the text") from err
    if prepend_bos and tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    if not ids:
        raise InputError(f"the prompt {prompt!r:.60} gives no tokens: give other text")
    return ids


def encode_prompts(tokenizer, prompts: Sequence[str], prepend_bos: bool = True) -> list[list[int]]:
    """:func:`encode` each prompt.

    Raises:
        ValueError: For no prompts or an empty prompt.
    """
    if not prompts:
        raise InputError("no prompts given")
    return [encode(tokenizer, p, prepend_bos) for p in prompts]


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to ``(batch, longest)`` ids and mask; real tokens keep positions ``0..n-1``."""
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, seq in enumerate(sequences):
        ids[b, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[b, : len(seq)] = 1
    return ids, mask


def check_lengths(sequences: Sequence[Sequence[int]], limit: int | None) -> None:
    """Raise ``ValueError`` for no sequences, an empty one, or one over ``limit`` tokens."""
    if not sequences:
        raise InputError("no sequences given")
    for index, seq in enumerate(sequences):
        which = "the prompt" if len(sequences) == 1 else f"prompt {index}"
        if len(seq) == 0:
            raise InputError(f"{which} has no tokens")
        if limit is not None and len(seq) > limit:
            raise InputError(
                f"{which} is {len(seq)} tokens long but the model takes at most {limit}: "
                "shorten it"
            )


_vocab_cache: list = [None, 0, []]  # (tokenizer, size, vocabulary) of the last call


def cached_vocabulary(tokenizer, size: int) -> list[str]:
    """Stored token strings for ids ``0..size-1``, cached for the last tokenizer used.

    Listing a large vocabulary takes tens of milliseconds, too slow for a widget.
    """
    if tokenizer is None:
        return [f"#{i}" for i in range(size)]
    if _vocab_cache[0] is not tokenizer or _vocab_cache[1] != size:
        _vocab_cache[:] = [tokenizer, size, vocabulary(tokenizer, size)]
    return _vocab_cache[2]
