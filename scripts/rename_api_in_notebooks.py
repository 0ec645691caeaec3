"""Point the notebooks' code at lensbook's new API paths (issue 13: subpackages, flat API).

Edits only the ``source`` of code cells, leaving outputs, metadata and markdown as they
are, and writes the JSON back in the notebooks' own format (``indent=1``, no ASCII
escaping, trailing newline). Running it again changes nothing, so it can be re-run on
another branch's notebooks when merging.

Usage: ``python scripts/rename_api_in_notebooks.py [notebooks/*.ipynb]``
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

# (old, new) in order; literal text unless the old side is a compiled pattern.
RENAMES: list[tuple[str | re.Pattern, str]] = [
    ("lensbook.trajectory.layer_logits", "lensbook.layer_logits"),
    ("lensbook.trajectory.trajectories_by_lens", "lensbook.trajectories_by_lens"),
    ("lensbook.trajectory.from_ids", "lensbook.trajectories_from_ids"),
    ("lensbook.trajectory.context_length", "lensbook.context_length"),
    ("lensbook.trajectory.trajectory(", "lensbook.trajectory("),
    ("lensbook.tables.layer_table", "lensbook.layer_table"),
    ("lensbook.tables.depth_table", "lensbook.depth_table"),
    ("lensbook.tables.most_frequent", "lensbook.most_frequent"),
    ("lensbook.tables.copy_rate", "lensbook.copy_rate"),
    ("lensbook.sources.load_chunks", "lensbook.load_chunks"),
    ("lensbook.sources.load_texts", "lensbook.load_texts"),
    ("lensbook.train_config.TrainConfig", "lensbook.TrainConfig"),
    ("lensbook.train.train_lens", "lensbook.train_lens"),
    ("lensbook.evaluate.evaluate_lenses", "lensbook.evaluate_lenses"),
    ("lensbook.evaluate.pivot", "lensbook.pivot"),
    ("lensbook.evaluate.save_metrics", "lensbook.save_metrics"),
    ("lensbook.transfer.transfer_matrix", "lensbook.transfer_matrix"),
    ("lensbook.drift.layer_covariances", "lensbook.layer_covariances"),
    ("lensbook.drift.covariance_similarity", "lensbook.covariance_similarity"),
    ("lensbook.compare.compare_models", "lensbook.compare_models"),
    ("lensbook.compare.layer_curves", "lensbook.layer_curves"),
    ("lensbook.compare.depth_summary", "lensbook.depth_summary"),
    ("plotting.curves.transfer_grid", "lensbook.transfer_grid"),
    ("from lensbook import anomaly, featurize, injection",
     "from lensbook.analysis import detectors, injection"),
    (re.compile(r"\banomaly\."), "detectors."),
    ("featurize.prompt_features", "lensbook.prompt_features"),
    ("from lensbook import copying\n", "from lensbook.analysis import copying, repeats\n"),
    ("copying.random_repeats", "repeats.random_repeats"),
    ("copying.text_repeats", "repeats.text_repeats"),
    # Evaluation's "top1" is the agreement with the output's top-1 ("top1" is the copy hit).
    ('pivot(results, "top1", "fraction")', 'pivot(results, "top1_agreement", "fraction")'),
    ('["kl", "ce", "top1"]', '["kl", "ce", "top1_agreement"]'),
    # Trajectory's statistic methods became the statistic registry.
    ("t.cross_entropy()", 'lensbook.STATISTICS["cross_entropy"].values(t)'),
]


def rename(source: str) -> str:
    """Apply :data:`RENAMES` to one cell's source."""
    for old, new in RENAMES:
        source = old.sub(new, source) if isinstance(old, re.Pattern) else source.replace(old, new)
    return source


def rename_notebook(path: Path) -> bool:
    """Rewrite one notebook in place; whether anything changed."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        old = "".join(cell["source"])
        new = rename(old)
        if new != old:
            cell["source"] = new.splitlines(keepends=True)
            changed = True
    if changed:
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
    return changed


def main(paths: list[str]) -> None:
    """Rename in the given notebooks (default: ``notebooks/*.ipynb``)."""
    files = [Path(p) for p in paths] or sorted(Path("notebooks").glob("*.ipynb"))
    for path in files:
        print(f"{path}: {'updated' if rename_notebook(path) else 'unchanged'}")


if __name__ == "__main__":
    main(sys.argv[1:])
