"""The embedded corpus: deterministic, disjoint splits, the documented content."""

import ast

import pytest

from lensbook.embedded import corpus


@pytest.fixture(scope="module")
def train():
    return corpus.load_corpus("train")


@pytest.fixture(scope="module")
def test():
    return corpus.load_corpus("test")


def test_splits_are_disjoint_and_cover_all(train, test):
    everything = corpus.load_corpus("all")
    assert set(train["id"]).isdisjoint(test["id"])
    assert sorted([*train["id"], *test["id"]]) == sorted(everything["id"])
    assert set(train["split"]) == {"train"} and set(test["split"]) == {"test"}


def test_module_docstrings_and_source_share_a_split(train, test):
    def modules(ds):
        return {i.split(":", 1)[1] for i in ds["id"] if not i.startswith("topic:")}

    assert modules(train).isdisjoint(modules(test))


def test_sizes_are_what_the_card_claims(train, test):
    def chars(ds):
        return sum(map(len, ds["text"]))

    assert set(train["kind"]) == set(test["kind"]) == set(corpus.KINDS)
    assert chars(train) > 5_000_000
    assert 200_000 < chars(test) < 0.1 * chars(train)
    assert len(set(train["id"])) == len(train)


def test_deterministic():
    first = corpus._all_documents()
    corpus._all_documents.cache_clear()
    assert corpus._all_documents() == first


def test_max_chars_keeps_whole_documents_in_order(train):
    small = corpus.load_corpus("train", max_chars=50_000)
    assert 0 < sum(map(len, small["text"])) <= 50_000
    assert list(small["id"]) == list(train["id"][: len(small)])
    assert len(corpus.load_corpus("train", max_chars=1)) == 1


def test_kinds_filter_and_bad_split():
    topics = corpus.load_corpus("all", kinds=("topic",))
    assert set(topics["kind"]) == {"topic"} and len(topics) > 50
    with pytest.raises(ValueError):
        corpus.load_corpus("validation")


def test_skips_tests_and_distribution_split_packages():
    names = [name for name, _ in corpus.stdlib_files()]
    assert "json" in names and "collections" in names and "os" in names
    for bad in ("test", "tkinter", "idlelib", "lib2to3", "distutils", "encodings"):
        assert not any(n == bad or n.startswith(bad + ".") for n in names)
    assert not any(n.startswith("_sysconfigdata") for n in names)


def test_docstrings_text_is_qualified_and_in_source_order():
    tree = ast.parse('"""Mod doc."""\nclass A:\n    """A doc."""\n'
                     '    def f(self):\n        """F doc."""\ndef g():\n    pass\n')
    assert corpus.docstrings_text(tree, "m") == "m\nMod doc.\n\nm.A\nA doc.\n\nm.A.f\nF doc."
