"""Comparing lenses across models (paper Figs. 5 and 14) on tiny local model folders."""

import json

import pandas as pd
import pytest
import torch

from lensbook import LogitLens, TunedLens, load_published, plotting, save_lens
from lensbook.analysis import compare
from tests.tiny_models import make_model
from tests.tiny_tokenizer import make_tokenizer

TEXT = "The cat sat on the mat. The dog ran. " * 40


def _folder(tmp_path, arch, seed):
    """A model folder with its tokenizer and a (random) tuned lens under ``lens/``."""
    model, folder = make_model(arch, seed=seed), tmp_path / f"{arch}-{seed}"
    model.save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    lens = TunedLens.from_model(model)
    torch.manual_seed(seed)
    for translator in lens.translators:
        torch.nn.init.normal_(translator.bias, std=0.1)
    save_lens(lens, folder / "lens")
    return str(folder)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    (tmp / "data.jsonl").write_text("\n".join(json.dumps({"text": TEXT}) for _ in range(4)))
    return [_folder(tmp, "gpt2", 0), _folder(tmp, "opt", 1)], str(tmp / "data.jsonl")


def test_a_local_folder_uses_its_own_lens(folders):
    (path, _), _ = folders
    model, _ = compare.load_model(path)
    lens = load_published(model)
    assert any(torch.count_nonzero(t.bias) for t in lens.translators)


def test_compare_models_stacks_one_evaluation_per_model(folders):
    names, data = folders
    frame = compare.compare_models(names, data, seq_len=16, max_tokens=256, progress=False,
                                   split="train")
    assert list(dict.fromkeys(frame["model"])) == names
    assert set(frame["lens"]) == {"logit lens", "tuned lens", "output"}
    assert (frame["layers"] == 3).all()


def test_layer_curves_end_at_the_output(folders):
    names, data = folders
    frame = compare.compare_models(names, data, seq_len=16, max_tokens=256, progress=False,
                                   split="train")
    curves = compare.layer_curves(frame, "ce", "bits/byte")
    assert len(curves) == len(names) * 2 * 4  # 2 lenses x (3 layers + output)
    assert list(dict.fromkeys(curves["model"])) == names  # the order given, not sorted
    reversed_order = compare.layer_curves(frame.iloc[::-1], "ce", "bits/byte")
    assert list(dict.fromkeys(reversed_order["model"])) == names[::-1]
    ends = curves[curves["depth"] == 1.0]
    for _, rows in ends.groupby("model"):
        assert rows["value"].nunique() == 1  # both lenses end at the same output value
    assert sorted(curves["depth"].unique()) == pytest.approx([0, 1 / 3, 2 / 3, 1])
    zero_layer = curves[(curves["layer"] == 0) & (curves["lens"] == "logit lens")]
    direct = compare.evaluate_model(names[0], data, seq_len=16, max_tokens=256, split="train")
    expected = direct.query("lens == 'logit lens' and layer == 0 and metric == 'ce' "
                            "and unit == 'bits/byte'")["value"].item()
    assert zero_layer["value"].iloc[0] == pytest.approx(expected)


def test_depth_summary_excludes_the_output():
    curves = pd.DataFrame({"model": "m", "lens": "logit lens", "layer": [0, 1, 2],
                           "depth": [0.0, 0.5, 1.0], "value": [4.0, 2.0, 100.0]})
    summary = compare.depth_summary(curves)
    assert summary.loc[("m", "logit lens"), "mean"] == pytest.approx(3.0)
    assert summary.loc[("m", "logit lens"), "max"] == pytest.approx(4.0)


def test_compare_needs_a_model():
    with pytest.raises(ValueError, match="at least one model"):
        compare.compare_models([], "corpus")


def test_plot_models_by_layer_has_a_panel_per_lens():
    curves = pd.DataFrame({"model": ["a", "a", "b", "b"] * 2,
                           "lens": ["logit lens"] * 4 + ["tuned lens"] * 4,
                           "depth": [0.0, 1.0] * 4, "value": [5, 1, 6, 2, 2, 1, 3, 2]})
    fig = plotting.plot_models_by_layer(curves)
    assert [ax.get_title() for ax in fig.axes] == ["logit lens", "tuned lens"]
    assert fig.axes[0].get_ylabel() == "cross-entropy (bits/byte)"
    assert len(fig.axes[0].get_lines()) >= 2  # one line per model


def test_plot_models_by_layer_draws_the_authors_curves_dashed():
    curves = pd.DataFrame({"model": ["gpt2"] * 4, "lens": ["logit lens"] * 2 + ["tuned lens"] * 2,
                           "depth": [0.0, 1.0] * 2, "value": [5, 1, 2, 1]})
    authors = pd.DataFrame({"model": ["gpt2", "other"], "lens": ["tuned lens"] * 2,
                            "depth": [0.0, 0.0], "value": [2.5, 9.0]})
    fig = plotting.plot_models_by_layer(curves, authors=authors)
    dashed = [line for line in fig.axes[1].get_lines() if line.get_linestyle() == "--"]
    assert [line.get_label() for line in dashed] == ["gpt2 (authors)"]  # "other" not drawn
    assert not [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]


def test_authors_curves_overlay_ours_only_for_shared_models():
    authors = pd.DataFrame({"model": ["gpt2"] * 2, "lens": ["tuned lens"] * 2,
                            "depth": [0.0, 0.5], "value": [2.5, 2.0]})
    ours = pd.DataFrame({"model": ["gpt2"] * 4, "lens": ["logit lens"] * 2 + ["tuned lens"] * 2,
                         "depth": [0.0, 1.0] * 2, "value": [5, 1, 2, 1]})
    overlaid = plotting.plot_authors_curves(authors, ours)
    assert [ax.get_title() for ax in overlaid.axes] == ["logit lens", "tuned lens"]
    assert [line.get_label() for line in overlaid.axes[1].get_lines()
            if line.get_linestyle() == "--"] == ["gpt2 (authors)"]
    alone = plotting.plot_authors_curves(authors, ours.assign(model="lensbook-tiny"))
    assert [ax.get_title() for ax in alone.axes] == ["tuned lens"]
    assert "authors" in alone.get_suptitle()
    assert not [line for line in alone.axes[0].get_lines() if line.get_linestyle() == "--"]


def test_zero_tuned_lens_curve_equals_the_logit_lens(folders, tmp_path):
    names, data = folders
    model, tokenizer = compare.load_model(names[0])
    zero = TunedLens.from_model(model)
    chunks = compare.load_chunks(data, tokenizer, 16, split="train", max_tokens=256)
    frame = compare.evaluate_lenses(model, {"logit lens": LogitLens.from_model(model),
                                            "tuned lens": zero}, chunks)
    lenses = frame[(frame["metric"] == "ce") & (frame["lens"] != "output")]
    ce = lenses.pivot_table(index=["layer", "unit"], columns="lens", values="value")
    assert torch.allclose(torch.tensor(ce["logit lens"].to_numpy()),
                          torch.tensor(ce["tuned lens"].to_numpy()))


def test_chunk_mb_reaches_the_evaluation(folders, monkeypatch):
    names, data = folders
    seen = []
    real = compare.evaluate_lenses

    def spy(*args, **kwargs):
        seen.append(kwargs.get("chunk_mb"))
        return real(*args, **kwargs)

    monkeypatch.setattr(compare, "evaluate_lenses", spy)
    compare.compare_models(names, data, max_tokens=256, seq_len=32, chunk_mb=1.0,
                           progress=False)
    assert seen == [1.0, 1.0]
