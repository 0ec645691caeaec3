"""Few-shot accuracy by layer with true and false demonstrations (paper Fig. 11)."""

import pandas as pd
import pytest
import torch

import lensbook
from lensbook import plotting
from lensbook.analysis import fewshot


@pytest.fixture(scope="module")
def nano():
    return lensbook.load_model("lensbook-nano")


def test_true_and_false_prompts_differ_only_in_the_demonstrations_labels():
    true = fewshot.fewshot_prompts("sentiment", 6, false_demos=False, seed=3)
    false = fewshot.fewshot_prompts("sentiment", 6, false_demos=True, seed=3)
    assert true == fewshot.fewshot_prompts("sentiment", 6, false_demos=False, seed=3)
    for t, f in zip(true, false, strict=True):
        assert t.answer == f.answer and t.text != f.text
        t_lines, f_lines = t.text.splitlines(), f.text.splitlines()
        assert t_lines[0::2] == f_lines[0::2]  # the same reviews and query
        shown = [line.removeprefix("Sentiment: ") for line in t_lines[1:-1:2]]
        flipped = [line.removeprefix("Sentiment: ") for line in f_lines[1:-1:2]]
        assert len(shown) == 4 and all(a != b for a, b in zip(shown, flipped, strict=True))
        assert t.text.endswith("Sentiment:")


def test_true_demonstrations_carry_their_true_labels():
    task = fewshot.SENTIMENT
    truth = dict(task.pairs)
    for prompt in fewshot.fewshot_prompts(task, 4, false_demos=False, shots=3):
        lines = prompt.text.splitlines()
        for review, label in zip(lines[0:-2:2], lines[1:-1:2], strict=True):
            assert truth[review.removeprefix("Review: ")] == label.removeprefix("Sentiment: ")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"task": "sentiment", "n": 0}, "n >= 1"),
    ({"task": "sentiment", "n": 2, "shots": 24}, "more items than shots"),
    ({"task": "nope", "n": 2}, "few-shot task"),
])
def test_bad_requests_say_what_is_wrong(kwargs, match):
    with pytest.raises((ValueError, KeyError), match=match):
        fewshot.fewshot_prompts(false_demos=True, **kwargs)


def test_label_tokens_are_distinct_or_refused(nano):
    _, tokenizer = nano
    ids = fewshot.label_token_ids(tokenizer, fewshot.get_fewshot_task("type"))
    assert len(set(ids.values())) == len(ids) == 15
    sentiment = fewshot.label_token_ids(tokenizer, fewshot.SENTIMENT)
    assert [tokenizer.decode([i]) for i in sentiment.values()] == [" positive", " negative"]
    with pytest.raises(ValueError, match="start with the same token"):
        fewshot.label_token_ids(tokenizer, fewshot.get_fewshot_task("upper"))


def test_output_row_is_the_models_own_choice_among_the_labels(nano):
    model, tokenizer = nano
    lenses = {"logit lens": lensbook.LogitLens.from_model(model),
              "zero tuned lens": lensbook.TunedLens.from_model(model)}
    prompts = [*fewshot.fewshot_prompts("type", 5, false_demos=False),
               *fewshot.fewshot_prompts("type", 5, false_demos=True)]
    table = fewshot.accuracy_by_layer(model, tokenizer, lenses, "type", prompts, batch_size=3)
    assert set(table["demos"]) == {"true", "false"}
    assert table["layer"].max() == model.config.num_hidden_layers
    assert table["accuracy"].between(0, 1).all() and (table["chance"] == 1 / 15).all()
    by = table.pivot_table(index=["demos", "layer"], columns="lens", values="accuracy")
    assert by["logit lens"].equals(by["zero tuned lens"])  # zero translators: the logit lens
    ids = torch.tensor(list(fewshot.label_token_ids(tokenizer, fewshot.TASKS["type"]).values()))
    labels = list(fewshot.label_token_ids(tokenizer, fewshot.TASKS["type"]))
    for demos, chosen in (("true", prompts[:5]), ("false", prompts[5:])):
        hits = 0
        for p in chosen:
            with torch.no_grad():
                logits = model(torch.tensor([tokenizer(p.text).input_ids])).logits[0, -1]
            hits += labels[int(logits[ids].argmax())] == p.answer
        assert by.loc[(demos, model.config.num_hidden_layers), "logit lens"] == hits / 5


def test_plot_has_a_panel_per_lens_and_a_dashed_line_for_false_demos():
    rows = [{"lens": lens, "layer": layer, "demos": demos, "accuracy": 0.5, "chance": 0.5}
            for lens in ("logit lens", "tuned lens") for demos in ("true", "false")
            for layer in range(3)]
    fig = plotting.plot_fewshot_accuracy(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes] == ["logit lens", "tuned lens"]
    styles = {line.get_label(): line.get_linestyle() for line in fig.axes[1].get_lines()}
    assert styles["chance"] == ":"
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert {"true", "false", "chance"} <= set(legend)
