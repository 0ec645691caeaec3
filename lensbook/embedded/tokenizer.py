"""The embedded models' tokenizer: byte-level BPE trained on the corpus, saved portably."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer with ``<|endoftext|>`` as BOS, EOS, UNK and PAD.

    Args:
        texts: Training documents.
        vocab_size: Final vocabulary size, the special token and 256 bytes included.

    Returns:
        A fast tokenizer that returns only ``input_ids`` and ``attention_mask``.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS,
        model_input_names=["input_ids", "attention_mask"],
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out: Path) -> None:
    """Save so that transformers 4.57 and 5.x load the same tokenizer.

    ``tokenizer_class`` is pinned to ``PreTrainedTokenizerFast`` and
    ``model_input_names`` to ids and mask: without it 4.57 also returns
    ``token_type_ids``, which GPT-2 adds to its embeddings, silently changing logits.
    """
    tokenizer.save_pretrained(out)
    path = Path(out) / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["model_input_names"] = ["input_ids", "attention_mask"]
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
