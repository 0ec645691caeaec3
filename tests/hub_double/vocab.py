"""Byte-level BPE tokenizers of the same kind, size and special tokens as the real ones.

One byte-level BPE (GPT-2's pre-tokenizer, 256 byte tokens + 50,000 merges) is trained
with ``tokenizers`` on lensbook's embedded corpus (text every CPython install ships)
and cached; each family then lays it out the way its real repository does:

* ``gpt2``: the 50,256 tokens, then ``<|endoftext|>`` = 50256 (BOS = EOS = UNK, no pad);
  ``vocab.json``, ``merges.txt``, ``tokenizer.json``, ``tokenizer_config.json``.
* ``neox`` (Pythia): ``<|endoftext|>`` = 0, ``<|padding|>`` = 1, the first 50,252 tokens
  (49,996 merges), then 23 added runs of 24 down to 2 spaces = 50,254-50,276: 50,277
  entries, NFC normaliser; ``tokenizer.json`` with ``tokenizer_class`` GPTNeoXTokenizer.
* ``opt``: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, the 50,256 tokens shifted by
  4, then ``madeupword0000``-``0004``: 50,265 entries; BOS = EOS = ``</s>``, pad
  ``<pad>``, ``add_bos_token``; only ``vocab.json`` and ``merges.txt`` (no
  ``tokenizer.json``), like ``facebook/opt-125m``.

If the corpus yields fewer than 50,000 merges, the vocabulary is padded with
unreachable tokens ``<|hub-double-pad-N|>`` so that every id range matches.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import (
    AddedToken,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

BASE_SIZE = 50256  # 256 bytes + 50,000 merges, as GPT-2
NEOX_BPE = 50252  # Pythia: 50,254 minus its two special tokens
NEOX_SPACES = range(24, 1, -1)  # added tokens 50,254-50,276: runs of 24..2 spaces
OPT_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
OPT_SIZE = 50265


def train_base(work: Path, texts: list[str]) -> tuple[list[str], list[str]]:
    """The trained tokens (in id order) and merges, cached under ``work``."""
    path = work / f"bpe-{BASE_SIZE}.json"
    if not path.exists():
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(
            vocab_size=BASE_SIZE, min_frequency=1, show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(texts, trainer)
        work.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(path))
    model = json.loads(path.read_text())["model"]
    tokens = sorted(model["vocab"], key=model["vocab"].get)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    pad = [f"<|hub-double-pad-{i}|>" for i in range(BASE_SIZE - len(tokens))]
    return tokens + pad, merges


def _bpe(vocab: dict[str, int], merges: list[str], nfc: bool = False) -> Tokenizer:
    pairs = [tuple(m.split(" ")) for m in merges]
    tokenizer = Tokenizer(models.BPE(vocab, pairs, dropout=None, continuing_subword_prefix="",
                                     end_of_word_suffix="", fuse_unk=False))
    if nfc:
        tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def _json(data: dict) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def gpt2_files(tokens: list[str], merges: list[str]) -> dict[str, bytes]:
    """The tokenizer files of the ``gpt2`` repository."""
    vocab = {t: i for i, t in enumerate(tokens)} | {"<|endoftext|>": BASE_SIZE}
    tokenizer = _bpe(vocab, merges)
    tokenizer.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=True)])
    return {
        "vocab.json": _json(vocab),
        "merges.txt": ("#version: 0.2\n" + "\n".join(merges) + "\n").encode(),
        "tokenizer.json": tokenizer.to_str(pretty=True).encode(),
        "tokenizer_config.json": _json({"model_max_length": 1024}),
    }


def neox_files(tokens: list[str], merges: list[str]) -> dict[str, bytes]:
    """The tokenizer files of a Pythia repository (the GPT-NeoX-20B tokenizer)."""
    vocab = {"<|endoftext|>": 0, "<|padding|>": 1}
    vocab |= {t: i + 2 for i, t in enumerate(tokens[:NEOX_BPE])}
    kept = set(vocab)
    merges = [m for m in merges[: NEOX_BPE - 256] if "".join(m.split(" ")) in kept]
    tokenizer = _bpe(vocab, merges, nfc=True)
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                  for t in ("<|endoftext|>", "<|padding|>")])
    tokenizer.add_tokens([AddedToken(" " * n, normalized=True) for n in NEOX_SPACES])
    special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>"}
    return {
        "tokenizer.json": tokenizer.to_str(pretty=True).encode(),
        "special_tokens_map.json": _json(special),
        "tokenizer_config.json": _json({"add_prefix_space": False, **special,
                                        "name_or_path": "EleutherAI/gpt-neox-20b",
                                        "tokenizer_class": "GPTNeoXTokenizer"}),
    }


def _added(content: str, typed: bool) -> dict:
    token = {"content": content, "lstrip": False, "normalized": True, "rstrip": False,
             "single_word": False}
    return {"__type": "AddedToken", **token} if typed else token


def opt_files(tokens: list[str], merges: list[str]) -> dict[str, bytes]:
    """The tokenizer files of ``facebook/opt-125m``: slow-format vocabulary and merges only."""
    vocab = {t: i for i, t in enumerate(OPT_SPECIALS)}
    vocab |= {t: i + len(OPT_SPECIALS) for i, t in enumerate(tokens)}
    vocab |= {f"madeupword{i:04d}": len(vocab) + i for i in range(OPT_SIZE - len(vocab))}
    def special(typed: bool) -> dict:
        return {"bos_token": _added("</s>", typed), "eos_token": _added("</s>", typed),
                "unk_token": _added("</s>", typed), "pad_token": _added("<pad>", typed)}

    config = {"errors": "replace", **special(True), "add_prefix_space": False,
              "add_bos_token": True, "special_tokens_map_file": None,
              "name_or_path": "patrickvonplaten/opt-30b"}
    return {
        "vocab.json": _json(vocab),
        "merges.txt": ("#version: 0.2\n" + "\n".join(merges) + "\n").encode(),
        "special_tokens_map.json": _json(special(False)),
        "tokenizer_config.json": _json(config),
    }


FAMILIES = {"gpt2": gpt2_files, "neox": neox_files, "opt": opt_files}
