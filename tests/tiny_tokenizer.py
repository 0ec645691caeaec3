"""A byte-level word tokenizer with the tiny models' vocabulary size (97), built offline."""

from __future__ import annotations

import itertools
import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from tests.tiny_models import VOCAB

BOS = "<|endoftext|>"
# Stored the byte-level way: "Ġ" is a space, "Ċ" a newline, "Ã©" the two bytes of "é".
WORDS = [BOS, "[UNK]", "The", "Ġcat", "Ġsat", "Ġon", "Ġthe", "Ġmat", "Ċ", "ĠÃ©", "Ġ$", "x", "$",
         ".", "Ġa", "Ġdog", "Ġran"]


def make_tokenizer() -> PreTrainedTokenizerFast:
    """Whole words of a fixed vocabulary (ids 0..96); anything else is ``[UNK]``."""
    fillers = ("Ġw" + "".join(p) for p in itertools.product(string.ascii_lowercase, repeat=2))
    words = WORDS + list(itertools.islice(fillers, VOCAB - len(WORDS)))
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=BOS,
                                   pad_token=BOS, unk_token="[UNK]")
