"""The embedded corpus: English and Python text that every CPython install ships.

lensbook trains its default model (``lensbook-tiny``) on this corpus so that every
notebook and test runs offline. The corpus is built from the running interpreter's
standard library, so its exact content depends on the CPython version (the shipped
model card records the version used). Nothing is downloaded and nothing is imported
from the standard library except ``pydoc_data.topics``: modules are read as text and
parsed with :mod:`ast`, which has no side effects.

Three kinds of documents, one per row:

* ``topic:<name>``: the reference-manual sections behind ``help("<name>")``
  (``pydoc_data.topics``), about 0.47M characters of English prose.
* ``doc:<module>``: every docstring of one standard-library module (the module,
  its classes and functions, in source order), each headed by its qualified name.
* ``src:<module>``: the module's source file as written (code, comments, docstrings).

Modules are the ``.py`` files under ``sysconfig.get_paths()["stdlib"]``, in sorted
order, skipping test suites, ``site-packages``, generated or machine-specific files
and packages that some distributions ship separately (Tk, IDLE, lib2to3, distutils,
ensurepip, venv). The held-out split is fixed by a hash of the module (or topic)
name, so a module's docstrings and its source always land in the same split.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import sysconfig
from functools import lru_cache
from pathlib import Path

import datasets

TEST_PERCENT = 5  # share of modules/topics held out; ~0.6M characters, enough for eval
KINDS = ("topic", "doc", "src")

# Directory names never read: test suites, third-party code, build config, and
# packages that Debian and others split into optional packages (so the corpus does
# not depend on which of them are installed).
_SKIP_DIRS = {
    "test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
    "lib-dynload", "idlelib", "turtledemo", "tkinter", "lib2to3", "distutils",
    "ensurepip", "venv", "pydoc_data", "encodings",
}
# Single modules skipped: generated tables, machine-specific data, Tk-only modules.
_SKIP_MODULES = {"turtle", "antigravity", "this", "sitecustomize", "_distutils_system_mod"}


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def stdlib_files(root: str | Path | None = None) -> list[tuple[str, Path]]:
    """List the standard-library source files used by the corpus.

    Args:
        root: Standard-library folder; defaults to ``sysconfig.get_paths()["stdlib"]``.

    Returns:
        ``(module_name, path)`` pairs sorted by module name.
    """
    root = Path(root or sysconfig.get_paths()["stdlib"])
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if any(p in _SKIP_DIRS or p.startswith("config-") for p in rel.parts[:-1]):
            continue
        name = _module_name(rel)
        if not name or name in _SKIP_MODULES or name.startswith("_sysconfigdata"):
            continue
        found.append((name, path))
    return sorted(found)


def docstrings_text(tree: ast.Module, module: str) -> str:
    """Collect the docstrings of one parsed module, each under its qualified name.

    Args:
        tree: The module's syntax tree (``ast.parse(source)``).
        module: Module name used as the prefix of qualified names.

    Returns:
        Docstrings in source order, separated by blank lines ("" when there are none).
    """
    parts: list[str] = []

    def visit(node: ast.AST, qualname: str) -> None:
        doc = ast.get_docstring(node, clean=False)
        if doc and doc.strip():
            parts.append(f"{qualname}\n{inspect.cleandoc(doc)}")
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{qualname}.{child.name}")

    visit(tree, module)
    return "\n\n".join(parts)


def _read_source(path: Path) -> tuple[str, ast.Module] | None:
    try:
        source = path.read_text(encoding="utf-8")
        return source, ast.parse(source)
    except (UnicodeDecodeError, SyntaxError, ValueError):
        return None


def split_of(key: str) -> str:
    """Return ``"test"`` or ``"train"`` for a module or topic name (stable hash)."""
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "test" if bucket < TEST_PERCENT else "train"


@lru_cache(maxsize=1)
def _all_documents() -> tuple[dict, ...]:
    from pydoc_data.topics import topics

    rows = [
        {"id": f"topic:{name}", "kind": "topic", "split": split_of(f"topic:{name}"),
         "text": text.strip()}
        for name, text in sorted(topics.items())
    ]
    for module, path in stdlib_files():
        parsed = _read_source(path)
        if parsed is None:
            continue
        source, tree = parsed
        split = split_of(module)
        doc = docstrings_text(tree, module)
        if doc:
            rows.append({"id": f"doc:{module}", "kind": "doc", "split": split, "text": doc})
        if source.strip():
            rows.append({"id": f"src:{module}", "kind": "src", "split": split, "text": source})
    return tuple(rows)


def load_corpus(
    split: str = "train",
    max_chars: int | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> datasets.Dataset:
    """Load the embedded corpus as a data set with one document per row.

    See the module docstring for what the documents are. The result is deterministic
    for a given CPython version: documents come in a fixed order (topics by name,
    then modules by name, docstrings before source).

    Args:
        split: ``"train"``, ``"test"`` (the held-out ~5% of modules and topics) or
            ``"all"``.
        max_chars: Keep whole documents, in order, until this many characters
            (at least one document); None keeps everything.
        kinds: Which document kinds to include, among ``("topic", "doc", "src")``.

    Returns:
        A ``datasets.Dataset`` with columns ``text``, ``id``, ``kind`` and ``split``.

    Example:
        >>> test = load_corpus("test", max_chars=10_000)
        >>> test.column_names
        ['id', 'kind', 'split', 'text']
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}")
    rows = [r for r in _all_documents()
            if (split == "all" or r["split"] == split) and r["kind"] in kinds]
    if max_chars is not None:
        kept, total = [], 0
        for r in rows:
            if kept and total + len(r["text"]) > max_chars:
                break
            kept.append(r)
            total += len(r["text"])
        rows = kept
    columns = ("id", "kind", "split", "text")
    return datasets.Dataset.from_dict({c: [r[c] for r in rows] for c in columns})


def corpus_fingerprint(split: str = "all") -> str:
    """Return a short SHA-256 of the corpus text, to tell corpus versions apart."""
    digest = hashlib.sha256()
    for row in _all_documents():
        if split in ("all", row["split"]):
            digest.update(row["id"].encode() + b"\0" + row["text"].encode() + b"\0")
    return digest.hexdigest()[:16]
