"""Parity of lensbook's Jacobian lens with TransformerLens's ``JacobianLens``.

Two steps, in two environments (TransformerLens pins its own dependencies):

1. ``<tl-venv>/bin/python benchmarks/jlens_parity.py tl --out DIR``: builds a small
   random-weight GPT-2 (6 blocks, d 128, GPT-2's tokenizer from the stand-in Hub cache;
   a full-size GPT-2 costs d = 768 backward passes per prompt, about 5 TFLOP, too much
   for a shared 2-core CPU) and saves it to ``DIR/model``, boots it from that folder
   (``TransformerBridge.boot_transformers``), fits TransformerLens's J-lens, writes its
   artifact (the official format), the exact token ids it fitted and evaluated on, and
   its top-8 readout at the last position of every evaluation prompt and source layer.
2. ``.venv/bin/python benchmarks/jlens_parity.py lensbook --out DIR``: fits lensbook's
   J-lens on the same token ids, reads the same prompts, and compares: top-8 overlap in
   every layer × prompt cell, top-1 agreement, the relative difference of the matrices,
   and the same readout from TransformerLens's artifact loaded by lensbook.

The bar is TransformerLens's own against the official package (its issue #1539):
top-8 overlap ≥ 7/8 in every cell and the same top-1 in ≥ 93 % of cells.
Set ``HF_HOME``/``HF_HUB_CACHE`` to the stand-in Hub and ``HF_HUB_OFFLINE=1`` first.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

FIT_PROMPTS = [
    "The history of the city begins in the early middle ages, when a small market grew up "
    "around the bridge over the river and merchants from the north came to trade wool.",
    "In mathematics, a group is a set with an operation that combines any two elements to "
    "form a third element, such that the operation is associative and has an identity.",
    "She opened the door slowly, listened for a moment to the rain on the roof, and then "
    "walked down the stairs to the kitchen where the lamp was still burning.",
    "The committee met on Tuesday to discuss the budget for next year, and after a long "
    "debate the members agreed to raise the funds for the new library building.",
    "Photosynthesis converts light energy into chemical energy stored in glucose, "
    "releasing oxygen as a by-product, and takes place mainly in the leaves of plants.",
    "def parse(line):\n    fields = line.strip().split(',')\n    return {name: value for "
    "name, value in zip(HEADER, fields)}\n\nfor row in open('data.csv'):\n    print(row)",
]
EVAL_PROMPTS = [
    "The Eiffel Tower is in the city of",
    "One, two, three, four, five, six, seven,",
    "The capital of Germany is Berlin and the capital of France is",
    "import numpy as np\nx = np.",
    "Once upon a time there was a little",
]
TOP_K = 8
MAX_SEQ_LEN = 128
SKIP_FIRST = 16  # TransformerLens's default, the official fits'


def make_model(out: Path, tokenizer_name: str) -> str:
    """A small GPT-2 with random weights, spread wide enough that J is far from I."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_name)
    config = transformers.GPT2Config(n_layer=6, n_embd=128, n_head=4, n_positions=256,
                                     vocab_size=len(tokenizer), initializer_range=0.1)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    return str(out / "model")


def run_tl(out: Path, tokenizer_name: str) -> None:
    """Fit and read with TransformerLens; write its artifact, tokens and top-k ids."""
    import torch
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.tools.analysis import JacobianLens

    model = TransformerBridge.boot_transformers(make_model(out, tokenizer_name), device="cpu")
    start = time.perf_counter()
    lens = JacobianLens.fit(model, FIT_PROMPTS, corpus="parity-prompts", max_seq_len=MAX_SEQ_LEN,
                            skip_first_positions=SKIP_FIRST, show_progress=False)
    seconds = time.perf_counter() - start
    lens.save(str(out / "tl_lens.pt"), dtype=torch.float32)
    fit_tokens = [model.to_tokens(p)[0, :MAX_SEQ_LEN].tolist() for p in FIT_PROMPTS]
    readouts = []
    for prompt in EVAL_PROMPTS:
        tokens = model.to_tokens(prompt)
        result = lens.readout(model, tokens, positions=[-1], top_k=TOP_K)
        readouts.append({"tokens": tokens[0].tolist(),
                         "top": {layer: ids[0].tolist()
                                 for layer, ids in result.lens_topk_indices.items()}})
    (out / "tl.json").write_text(json.dumps({"fit_tokens": fit_tokens, "readouts": readouts,
                                             "seconds": seconds, "n_prompts": lens.n_prompts}))
    print(f"TransformerLens: fitted {lens.n_prompts} prompts in {seconds:.1f} s")


def run_lensbook(out: Path, _tokenizer_name: str) -> None:
    """Fit lensbook's J-lens on TransformerLens's tokens and compare the readouts."""
    import torch

    import lensbook

    tl = json.loads((out / "tl.json").read_text())
    model, _ = lensbook.load_model(str(out / "model"))
    prompts = [torch.tensor(ids) for ids in tl["fit_tokens"]]
    ours = lensbook.JacobianLens.fit(model, prompts, tol=None, skip_first=SKIP_FIRST,
                                     progress=False)
    theirs = lensbook.load_jacobian_artifact(out / "tl_lens.pt", model)
    difference = (ours.J[1:] - theirs.J[1:]).flatten(1).norm(dim=1) / theirs.J[1:].flatten(
        1).norm(dim=1)
    identity = lensbook.JacobianLens.from_model(model)  # the logit lens: a baseline
    cells = [_cell(model, lens, readout, int(layer), top)
             for readout in tl["readouts"] for layer, top in readout["top"].items()
             if int(layer) < model.config.get_text_config().num_hidden_layers - 1
             for lens in (ours, theirs, identity)]
    report(ours, tl, difference, {"lensbook fit": cells[0::3],
                                  "TL artifact read by lensbook": cells[1::3],
                                  "logit lens (J = I), for scale": cells[2::3]})


def _cell(model, lens, readout: dict, layer: int, top: list[int]) -> tuple[int, bool]:
    """Top-8 overlap and top-1 match of lensbook's readout of TL's layer ``layer``."""
    import torch

    import lensbook

    ids = torch.tensor([readout["tokens"]])
    hidden = lensbook.hidden_states(model, ids)
    with torch.no_grad():
        logits = lens(hidden[layer + 1][0, -1], layer + 1)  # TL's layer l: after l + 1 blocks
    mine = logits.topk(TOP_K).indices.tolist()
    return len(set(mine) & set(top)), mine[0] == top[0]


def report(ours, tl: dict, difference, rows: dict) -> None:
    """Print the parity table (Markdown)."""
    print(f"lensbook fit: {ours.config.n_prompts} prompts in "
          f"{ours.config.training['seconds']:.1f} s; TransformerLens: {tl['n_prompts']} "
          f"prompts in {tl['seconds']:.1f} s")
    print("relative difference of J per TL layer: "
          + ", ".join(f"{d:.2e}" for d in difference.tolist()))
    for name, cells in rows.items():
        overlaps = [overlap for overlap, _ in cells]
        top1 = sum(same for _, same in cells)
        print(f"| {name} | {len(cells)} cells | min top-8 overlap {min(overlaps)}/8 | "
              f"top-1 identical {top1}/{len(cells)} ({100 * top1 / len(cells):.1f} %) | "
              f"bar met: {min(overlaps) >= 7 and top1 >= 0.93 * len(cells)} |")


def main() -> None:
    """Run one side of the comparison."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("side", choices=["tl", "lensbook"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/jlens_parity"))
    parser.add_argument("--tokenizer", default="gpt2", help="GPT-2's tokenizer (Hub name)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (run_tl if args.side == "tl" else run_lensbook)(args.out, args.tokenizer)


if __name__ == "__main__":
    main()
