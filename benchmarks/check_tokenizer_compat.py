"""Check that a model folder gives the same model inputs (and logits) in every transformers.

Run it with each interpreter and compare the printed hashes, for example::

    .venv/bin/python benchmarks/check_tokenizer_compat.py
    .venv-ref/bin/python benchmarks/check_tokenizer_compat.py

Default folder: the embedded ``lensbook/assets/lensbook-tiny``. The script only
reads the folder (it does not import lensbook), so it runs in any environment with
torch and transformers.
"""

import hashlib
import json
import sys
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

DEFAULT = Path(__file__).resolve().parents[1] / "lensbook" / "assets" / "lensbook-tiny"
TEXTS = [
    "The for statement is used to iterate over the elements of a sequence.",
    "def __init__(self, *args, **kwargs):\n    super().__init__()\n\treturn None",
    "Ünïcödé ✓ — naïve café 日本語 🐍",
    "  leading spaces and trailing  ",
    "<|endoftext|>two documents<|endoftext|>",
    "",
]


def main(folder: Path) -> None:
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(TEXTS, padding=True)
    keys = sorted(enc.keys())
    payload = json.dumps({k: enc[k] for k in keys}, sort_keys=True).encode()
    inputs_hash = hashlib.sha256(payload).hexdigest()[:16]

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    batch = tok(TEXTS[:2], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    rounded = torch.round(logits * 1000).to(torch.int64).numpy().tobytes()
    logits_hash = hashlib.sha256(rounded).hexdigest()[:16]

    print(f"transformers {transformers.__version__}, tokenizer {type(tok).__name__}")
    print(f"keys: {keys}")
    print(f"input hash: {inputs_hash}")
    print(f"logits hash (rounded to 1e-3): {logits_hash}  sum: {logits.double().sum():.6f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
