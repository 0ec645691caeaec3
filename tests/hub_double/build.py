"""Build the stand-in Hub: ``python -m tests.hub_double.build [--root DIR]``.

Idempotent: a repository whose ``refs/main`` exists (or a data set whose
``dataset_info.json`` exists) is skipped, so a second run takes seconds. Everything
goes under ``.cache/hub-double/`` (git-ignored); see ``tests/hub_double/README.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from tests.hub_double import configs, env, layout, pile, published, vocab, weights


def _log(message: str, start: float) -> None:
    print(f"[hub-double {time.monotonic() - start:6.1f}s] {message}", flush=True)


def _json(data: dict) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


def _card(repo_id: str) -> bytes:
    return (f"# {repo_id} (lensbook stand-in)\n\nReal config and tokenizer layout, random "
            "weights and a tokenizer trained on lensbook's embedded corpus. Not the real "
            "model: built by tests/hub_double/build.py for offline tests.\n").encode()


def model_files(model_id: str, base: tuple[list[str], list[str]]) -> dict[str, bytes]:
    """Every file of the double's repository for ``model_id``."""
    config = configs.CONFIGS[model_id]
    model = weights.random_model(config)
    files = {"config.json": _json(config), "README.md": _card(model_id),
             "model.safetensors": weights.safetensors_bytes(model, config)}
    if model_id in configs.GENERATION_CONFIGS:
        files["generation_config.json"] = _json(configs.GENERATION_CONFIGS[model_id])
    return files | vocab.FAMILIES[configs.TOKENIZERS[model_id]](*base)


def snapshot(hub: Path, repo_id: str, repo_type: str = "model") -> Path:
    """The ``main`` snapshot folder of a built repository."""
    root = layout.repo_dir(hub, repo_id, repo_type)
    return root / "snapshots" / (root / "refs" / "main").read_text().strip()


def space_files(hub: Path) -> dict[str, bytes]:
    """The Space's files: a lens for every model (loaded back from the double)."""
    from transformers import AutoModelForCausalLM

    files = {"README.md": _card(published.REPO_ID)}
    for seed, model_id in enumerate(configs.CONFIGS):
        model = AutoModelForCausalLM.from_pretrained(snapshot(hub, model_id))
        files |= published.lens_files(model_id, model, seed)
    return files


def base_tokens(root: Path) -> tuple[list[str], list[str]]:
    """The trained byte-level BPE shared by every tokenizer (trained once, then cached)."""
    import lensbook

    return vocab.train_base(root / "work", list(lensbook.load_texts("corpus", "all")["text"]))


def build(root: Path = env.ROOT) -> None:
    """Build whatever is missing of the double under ``root``."""
    start = time.monotonic()
    hub, data = env.hub_cache(root), env.datasets_cache(root)
    missing = [m for m in configs.CONFIGS if not layout.is_built(hub, m)]
    base = base_tokens(root) if missing else None
    for model_id in missing:
        layout.write_repo(hub, model_id, model_files(model_id, base))
        _log(f"model {model_id}", start)
    for model_id, revisions in configs.REVISIONS.items():
        layout.write_revisions(hub, model_id, revisions)
    if not layout.is_built(hub, published.REPO_ID, published.REPO_TYPE):
        layout.write_repo(hub, published.REPO_ID, space_files(hub), published.REPO_TYPE)
        _log(f"space {published.REPO_ID}", start)
    if not pile.is_built(data):
        pile.build(data)
        _log(f"dataset {pile.REPO_ID}", start)
    size = subprocess.run(["du", "-sh", str(root)], capture_output=True, text=True).stdout
    _log(f"ready: {size.split()[0] if size else '?'} in {root}", start)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=env.ROOT, help="where to build it")
    build(parser.parse_args().root)


if __name__ == "__main__":
    main()
