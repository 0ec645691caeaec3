"""Lens files round-trip between lensbook and the reference package (tuned-lens 0.2.0).

Run by ``benchmarks/reference_compat.sh``, which calls the three steps in two
virtual environments:

1. ``make`` (lensbook venv): build tiny random-weight models, save each with a
   random lensbook ``TunedLens`` in the reference layout, and record lensbook's
   per-layer logits on fixed inputs.
2. ``ref`` (reference venv): load each lensbook lens with
   ``tuned_lens.TunedLens.from_model_and_pretrained(model, folder)``, record the
   reference's logits; then save a random reference lens and record its logits.
3. ``check`` (lensbook venv): compare the logits of step 1 with the reference's,
   and load each reference lens into lensbook and compare with the reference's logits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ARCHS = ("gpt2", "gpt_neox", "llama")
TOL = 1e-4


def _inputs() -> torch.Tensor:
    return torch.randint(1, 97, (2, 9), generator=torch.Generator().manual_seed(3))


def _randomise(params) -> None:
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in params:
            p.copy_(0.05 * torch.randn(p.shape, generator=generator))


def make(root: Path) -> None:
    """Step 1: models, lensbook lenses in the reference layout, lensbook logits."""
    from lensbook import TunedLens, save_lens
    from lensbook.core.run import layer_logits
    from tests.tiny_models import make_model

    for arch in ARCHS:
        model = make_model(arch)
        model.save_pretrained(root / arch / "model")
        model.config.name_or_path = str(root / arch / "model")
        lens = TunedLens.from_model(model)
        _randomise(lens.translators.parameters())
        save_lens(lens, root / arch / "lensbook_lens", formats=("pt",))
        logits = layer_logits(model, lens, _inputs())[:-1]
        torch.save(logits, root / arch / "lensbook_logits.pt")


def _reference_logits(model, lens) -> torch.Tensor:
    with torch.no_grad():
        hidden = model(_inputs(), output_hidden_states=True).hidden_states
        return torch.stack([lens(h, i) for i, h in enumerate(hidden[:-1])])


def ref(root: Path) -> None:
    """Step 2, in the reference venv: load lensbook's lenses, save reference lenses."""
    from transformers import AutoModelForCausalLM
    from tuned_lens import TunedLens

    for arch in ARCHS:
        model = AutoModelForCausalLM.from_pretrained(root / arch / "model").eval()
        lens = TunedLens.from_model_and_pretrained(model, str(root / arch / "lensbook_lens"))
        torch.save(_reference_logits(model, lens), root / arch / "ref_on_lensbook_lens.pt")
        own = TunedLens.from_model(model)
        _randomise(own.layer_translators.parameters())
        own.save(root / arch / "reference_lens")
        torch.save(_reference_logits(model, own), root / arch / "ref_logits.pt")


def check(root: Path) -> int:
    """Step 3: compare; returns the number of failures."""
    from transformers import AutoModelForCausalLM

    from lensbook import load_lens
    from lensbook.core.run import layer_logits

    failures = 0
    for arch in ARCHS:
        ours = torch.load(root / arch / "lensbook_logits.pt")
        theirs = torch.load(root / arch / "ref_on_lensbook_lens.pt")
        failures += _report(arch, "lensbook lens in the reference", ours, theirs)
        model = AutoModelForCausalLM.from_pretrained(root / arch / "model").eval()
        lens = load_lens(root / arch / "reference_lens", model)
        ours = layer_logits(model, lens, _inputs())[:-1]
        theirs = torch.load(root / arch / "ref_logits.pt")
        failures += _report(arch, "reference lens in lensbook", ours, theirs)
    return failures


def _report(arch: str, what: str, ours: torch.Tensor, theirs: torch.Tensor) -> int:
    diff = (ours - theirs).abs().max().item()
    ok = ours.shape == theirs.shape and diff <= TOL
    print(f"{arch:9s} {what:32s} max |Δlogit| = {diff:.2e}  {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    step, folder = sys.argv[1], Path(sys.argv[2])
    if step == "make":
        make(folder)
    elif step == "ref":
        ref(folder)
    else:
        sys.exit(check(folder))
