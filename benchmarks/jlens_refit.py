"""Refit noise of the Jacobian lens: two fits on disjoint prompts, per-layer cosine of J.

Usage: ``python benchmarks/jlens_refit.py [--model lensbook-tiny] [--prompts 100]``.
Prints a Markdown table (layer, cosine of the two J_l flattened, relative difference)
and how long each fit took.
"""

from __future__ import annotations

import argparse

import torch

import lensbook
from lensbook.core.jacobian_fit import fit_jacobian_lens


def main() -> None:
    """Fit twice on disjoint halves of the training text and compare the fits."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="lensbook-tiny")
    parser.add_argument("--data", default="corpus")
    parser.add_argument("--prompts", type=int, default=100, help="prompts per fit")
    parser.add_argument("--seq-len", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    model, tokenizer = lensbook.load_model(args.model)
    chunks = lensbook.load_chunks(args.data, tokenizer, args.seq_len,
                                  max_tokens=2 * args.prompts * args.seq_len)
    ids = chunks.input_ids
    if len(ids) < 2 * args.prompts:
        raise SystemExit(f"only {len(ids)} prompts of {args.seq_len} tokens in {args.data}")
    fits = [fit_jacobian_lens(model, part, tol=None, progress=False, data=args.data)
            for part in (ids[: args.prompts], ids[args.prompts: 2 * args.prompts])]
    a, b = (fit.J.flatten(1) for fit in fits)
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1)
    relative = (a - b).norm(dim=1) / a.norm(dim=1)
    print(f"model {args.model}, {args.prompts} prompts × {args.seq_len} tokens per fit; "
          f"seconds per fit: {[fit.config.training['seconds'] for fit in fits]}")
    print("| layer | cosine(J_a, J_b) | ‖J_a − J_b‖ / ‖J_a‖ |\n|---|---|---|")
    for layer, (cos, rel) in enumerate(zip(cosine.tolist(), relative.tolist(), strict=True)):
        print(f"| {layer} | {cos:.5f} | {rel:.4f} |")


if __name__ == "__main__":
    main()
