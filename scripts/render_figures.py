"""Render trajectory figures for three prompts into ``figures/``.

For each prompt: the logit lens and the tuned lens side by side, coloured by entropy
and by the rank of the true next token (log scale), and the prediction depth as
coloured text.

Usage::

    python scripts/render_figures.py [--model lensbook-tiny] [--lens FOLDER] [--out figures]

Without ``--lens`` the model's shipped or published lens is used
(``lensbook.load_published``); if there is none, the tuned lens is zero-initialised
(untrained: it equals the logit lens, and is labelled so).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lensbook
from lensbook.core.run import trajectories_by_lens
from lensbook.plotting import plot_lens_comparison, plot_prediction_depth, save_figure

PROMPTS = [
    "The for statement is used to iterate over the items of a list",
    "def __init__(self, name):\n    self.name = name",
    "Return a new dictionary with the keys and values swapped.",
]


def load_lenses(model, lens_folder: str | None) -> dict[str, lensbook.LogitLens]:
    """The logit lens and a tuned lens (trained if ``lens_folder`` is given)."""
    if lens_folder:
        tuned, name = lensbook.load_lens(lens_folder, model), "tuned lens"
    elif (published := _published(model)) is not None:
        tuned, name = published, "tuned lens"
    else:
        tuned, name = lensbook.TunedLens.from_model(model), "tuned lens (untrained)"
    return {"logit lens": lensbook.LogitLens.from_model(model), name: tuned}


def _published(model) -> lensbook.TunedLens | None:
    try:
        return lensbook.load_published(model)
    except (OSError, ValueError):  # no lens shipped or published, or no network
        return None


def render(model_name: str, lens_folder: str | None, out: Path) -> list[Path]:
    """Write the figures for :data:`PROMPTS` and return their paths."""
    model, tokenizer = lensbook.load_model(model_name)
    lenses = load_lenses(model, lens_folder)
    by_lens = trajectories_by_lens(model, tokenizer, lenses, PROMPTS)
    paths = []
    for i in range(len(PROMPTS)):
        pair = [by_lens[name][i] for name in lenses]
        for statistic in ("entropy", "rank"):
            fig = plot_lens_comparison(pair, statistic)
            paths.append(save_figure(fig, f"prompt{i + 1}-{statistic}", out))
        paths.append(save_figure(plot_prediction_depth(pair[-1]), f"prompt{i + 1}-depth", out))
    return paths


def main() -> None:
    """Parse the command line and render."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=lensbook.DEFAULT_MODEL, help="model name or folder")
    parser.add_argument("--lens", default=None, help="folder of a trained tuned lens")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder")
    args = parser.parse_args()
    for path in render(args.model, args.lens, args.out):
        print(path)


if __name__ == "__main__":
    main()
