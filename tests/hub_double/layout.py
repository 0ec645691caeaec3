"""Write a repository into the Hugging Face cache layout, the way a download would.

``huggingface_hub`` keeps each repository in ``<cache>/<type>s--<org>--<name>/``::

    refs/main                  the commit hash that ``main`` points to
    snapshots/<commit>/<path>  relative symlinks into blobs/
    blobs/<etag>               file contents, named by the Hub's ETag: the SHA-256 of
                               the content for LFS files, the git blob SHA-1 otherwise

Offline (``HF_HUB_OFFLINE=1``) ``hf_hub_download`` reads ``refs/<revision>`` and returns
``snapshots/<commit>/<path>``. ``refs/main`` is written last, so a half-written
repository is rebuilt on the next run instead of being served.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from huggingface_hub.file_download import repo_folder_name

# Suffixes the Hub stores with LFS (etag = SHA-256 of the content).
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".arrow", ".parquet", ".zst")


def repo_dir(cache: Path, repo_id: str, repo_type: str = "model") -> Path:
    """The folder of ``repo_id`` inside the hub cache ``cache``."""
    return cache / repo_folder_name(repo_id=repo_id, repo_type=repo_type)


def is_built(cache: Path, repo_id: str, repo_type: str = "model") -> bool:
    """Whether the repository is complete (its ``refs/main`` exists)."""
    return (repo_dir(cache, repo_id, repo_type) / "refs" / "main").is_file()


def etag(path: str, content: bytes) -> str:
    """The ETag the Hub gives a file: SHA-256 for LFS files, git blob SHA-1 otherwise."""
    if path.endswith(LFS_SUFFIXES):
        return hashlib.sha256(content).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def commit_hash(repo_id: str, files: dict[str, bytes]) -> str:
    """A deterministic 40-hex commit id for this content (not the real Hub commit)."""
    digest = hashlib.sha1(repo_id.encode())
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + etag(path, files[path]).encode())
    return digest.hexdigest()


def write_repo(
    cache: Path, repo_id: str, files: dict[str, bytes], repo_type: str = "model"
) -> Path:
    """Write ``files`` (repo path -> content) as the ``main`` snapshot of ``repo_id``.

    Returns:
        The snapshot folder.
    """
    root = repo_dir(cache, repo_id, repo_type)
    commit = commit_hash(repo_id, files)
    snapshot = root / "snapshots" / commit
    for path, content in files.items():
        blob = root / "blobs" / etag(path, content)
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(content)
        link = snapshot / path
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    return snapshot


def write_revisions(cache: Path, repo_id: str, revisions: list[str]) -> None:
    """Point each name in ``revisions`` at the ``main`` snapshot (``refs/<name>``)."""
    refs = repo_dir(cache, repo_id) / "refs"
    main = (refs / "main").read_text()
    for name in revisions:
        if not (refs / name).is_file():
            (refs / name).write_text(main)
