"""``monology/pile-uncopyrighted`` as ``datasets`` finds it offline: its Arrow cache.

Why not the hub cache: in ``datasets`` 5.x, ``load_dataset("<org>/<name>")`` first calls
``_raise_if_offline_mode_is_enabled()`` when ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``
is set, before it looks at any hub-cache file, and then falls back to
``CachedDatasetModuleFactory``: the Arrow files a previous ``load_dataset`` left in
``HF_DATASETS_CACHE/<org>___<name>/<config>/<version>/<commit>/``. That fallback serves
``streaming=True`` too (the ``cache`` builder streams its Arrow files), so it is the one
offline path that runs the notebooks' call unchanged. This module writes that folder.

Content: the real data set has a ``text`` column and a ``meta`` struct
(``pile_set_name``) and splits ``train``, ``validation`` and ``test``. Here ``train`` is
every document of lensbook's embedded corpus and ``validation``/``test`` are its
held-out documents repeated ``REPEAT`` times, so every split holds more tokens than any
online profile reads (262,144).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import datasets
from datasets.arrow_writer import ArrowWriter

import lensbook

REPO_ID = "monology/pile-uncopyrighted"
NAME = "pile-uncopyrighted"
REPEAT = 4
SET_NAMES = {"topic": "Pile-CC", "doc": "Github", "src": "Github"}  # corpus kind -> pile set
FEATURES = datasets.Features({"text": datasets.Value("string"),
                              "meta": {"pile_set_name": datasets.Value("string")}})


def cache_root(datasets_cache: Path) -> Path:
    """``HF_DATASETS_CACHE/monology___pile-uncopyrighted``."""
    org, name = REPO_ID.split("/")
    return datasets_cache / f"{org}___{name}"


def is_built(datasets_cache: Path) -> bool:
    """Whether the Arrow cache has been written (its ``dataset_info.json`` exists)."""
    return any(cache_root(datasets_cache).glob("default/0.0.0/*/dataset_info.json"))


def _rows(split: str) -> list[dict]:
    corpus = lensbook.load_texts("corpus", "all" if split == "train" else "test")
    rows = [{"text": text, "meta": {"pile_set_name": SET_NAMES[kind]}}
            for text, kind in zip(corpus["text"], corpus["kind"], strict=True)]
    return rows if split == "train" else rows * REPEAT


def write_split(folder: Path, split: str) -> datasets.SplitInfo:
    """Write ``<name>-<split>.arrow`` and return its split info."""
    rows = _rows(split)
    with ArrowWriter(features=FEATURES, path=str(folder / f"{NAME}-{split}.arrow")) as writer:
        for row in rows:
            writer.write(row)
        _, num_bytes = writer.finalize()
    return datasets.SplitInfo(name=split, num_bytes=num_bytes, num_examples=len(rows),
                              dataset_name=NAME)


def build(datasets_cache: Path) -> Path:
    """Write the Arrow cache of every split; returns its folder."""
    commit = hashlib.sha1(f"{REPO_ID}@lensbook-hub-double".encode()).hexdigest()
    folder = cache_root(datasets_cache) / "default" / "0.0.0" / commit
    folder.mkdir(parents=True, exist_ok=True)
    splits = datasets.SplitDict(dataset_name=NAME)
    for split in ("train", "validation", "test"):
        splits.add(write_split(folder, split))
    info = datasets.DatasetInfo(features=FEATURES, config_name="default", dataset_name=NAME,
                                builder_name="json", version="0.0.0", splits=splits)
    info.write_to_directory(str(folder))  # written last: marks the cache complete
    return folder
