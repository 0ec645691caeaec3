"""The explorers' callbacks, driven without a browser."""

import ast
from pathlib import Path

import ipywidgets
import numpy as np
import pytest
import torch

import lensbook
from lensbook import LogitLens, TunedLens
from lensbook.analysis import statistic
from lensbook.widgets import (
    MAX_POSITIONS,
    TopKExplorer,
    TrajectoryExplorer,
    explorer,
    top_k_explorer,
)
from tests.tiny_tokenizer import make_tokenizer

PROMPT = "The cat sat on the mat"


@pytest.fixture(scope="module")
def lenses(model):
    tuned = TunedLens.from_model(model)
    with torch.no_grad():
        for translator in tuned.translators:
            translator.bias.normal_(0, 1.0)  # differs from the logit lens
    return {"logit lens": LogitLens.from_model(model), "tuned lens": tuned}


@pytest.fixture
def heatmap(model, lenses):
    return explorer(model, make_tokenizer(), lenses, prompt=PROMPT)


def yticks(explorer_):
    return [t.get_text() for t in explorer_.figure.axes[0].texts if t.get_gid() == "layer"]


def top1_texts(explorer_):
    return sorted(t.get_text() for t in explorer_.figure.axes[0].texts if t.get_gid() == "top1")


def test_explorer_is_a_widget_with_all_controls(heatmap):
    assert isinstance(heatmap, TrajectoryExplorer) and isinstance(heatmap, ipywidgets.VBox)
    controls = [heatmap.runner.prompt, heatmap.runner.lens, heatmap.statistic, heatmap.stride,
                heatmap.positions, heatmap.fit]
    shown = set()
    stack = list(heatmap.children)
    while stack:
        widget = stack.pop()
        shown.add(widget)
        stack.extend(getattr(widget, "children", ()))
    assert set(controls) | {heatmap.image} <= shown
    assert heatmap.updates == 1 and heatmap.png[:4] == b"\x89PNG"
    assert heatmap.image.value == heatmap.png
    assert heatmap.positions.value == (0, 7) and heatmap.positions.max == 7


def test_prompt_change_recomputes(heatmap):
    before_png, before = heatmap.png, heatmap.trajectory
    heatmap.runner.prompt.value = "The dog ran"
    assert heatmap.updates == 2
    assert heatmap.trajectory is not before
    assert heatmap.trajectory.tokens == ["<|endoftext|>", "The", "Ġdog", "Ġran"]
    assert heatmap.positions.value == (0, 4) and heatmap.positions.max == 4
    assert heatmap.png != before_png and heatmap.image.value == heatmap.png
    top1 = statistic.top_tokens(heatmap.trajectory)
    assert top1_texts(heatmap) == sorted(heatmap.trajectory.label(int(i), 7) for i in top1.ravel())


def test_sliders_redraw_without_recomputing(heatmap):
    traj = heatmap.trajectory
    heatmap.stride.value = 2
    assert yticks(heatmap) == ["0", "2", "output"] and heatmap.trajectory is traj
    heatmap.positions.value = (1, 3)
    assert len(top1_texts(heatmap)) == 3 * 2
    inputs = [t.get_text() for t in heatmap.figure.axes[0].texts if t.get_gid() == "input"]
    assert inputs == ["The", "␣cat"]
    heatmap.positions.value = (7, 7)  # an empty range still shows one token
    assert len(top1_texts(heatmap)) == 3 * 1
    heatmap.positions.value = (1, 3)
    heatmap.statistic.value = "rank"
    assert heatmap.figure.axes[-1].get_ylabel() == "rank of next token (1 = top)"
    assert heatmap.updates == 6 and heatmap.trajectory is traj


def colour_range(explorer_):
    (mesh,) = [c for c in explorer_.figure.axes[0].collections if c.get_gid() == "statistic"]
    return mesh.norm.vmin, mesh.norm.vmax


def test_colour_scale_is_fixed_across_lenses_and_prompts_unless_fitted(heatmap):
    heatmap.statistic.value = "kl"
    fixed = colour_range(heatmap)
    assert fixed == pytest.approx((0.0, np.log(heatmap.trajectory.log_probs.shape[-1])))
    heatmap.runner.lens.value = "tuned lens"
    assert colour_range(heatmap) == fixed
    heatmap.runner.prompt.value = "The dog ran"
    assert colour_range(heatmap) == fixed
    heatmap.fit.value = True  # the user asks for the figure's own range
    assert colour_range(heatmap) != fixed
    heatmap.fit.value = False
    assert colour_range(heatmap) == fixed


def test_lens_selector(heatmap, lenses):
    logit_values = heatmap.trajectory.log_probs
    heatmap.runner.lens.value = "tuned lens"
    assert heatmap.trajectory.lens_label == "tuned lens"
    assert heatmap.figure.axes[0].get_title() == "tuned lens"
    assert not torch.allclose(heatmap.trajectory.log_probs[:-1], logit_values[:-1])
    assert torch.allclose(heatmap.trajectory.log_probs[-1], logit_values[-1])


def test_bad_prompt_keeps_the_figure_and_says_why(heatmap, model):
    png, updates = heatmap.png, heatmap.updates
    heatmap.runner.prompt.value = ""
    assert "empty" in heatmap.status.value and heatmap.png == png and heatmap.updates == updates
    heatmap.runner.prompt.value = " the" * 70
    assert "at most 64" in heatmap.status.value and heatmap.updates == updates
    heatmap.runner.prompt.value = "The cat"
    assert heatmap.updates == updates + 1 and "tokens" in heatmap.status.value


def test_untokenisable_prompt_shows_a_message_and_the_explorer_stays_usable(model):
    from tests.test_errors import strict_tokenizer

    box = explorer(model, strict_tokenizer(), prompt="the cat")
    png, updates = box.png, box.updates
    box.runner.prompt.value = "the café"
    assert "cannot encode the prompt" in box.status.value and "color:#b00020" in box.status.value
    assert box.png == png and box.image.value == png and box.updates == updates
    box.runner.prompt.value = "   "  # no BOS, and spaces are tokens here: a valid prompt
    box.runner.prompt.value = "the dog"
    assert box.updates == updates + 2 and box.trajectory.tokens[:3] == ["t", "h", "e"]


def test_any_error_in_a_callback_lands_in_the_status_line(model, lenses):
    bars = top_k_explorer(model, make_tokenizer(), lenses, prompt=PROMPT)
    updates, weight = bars.updates, model.transformer.h[0].attn.c_attn.weight
    original = weight[0, 0].item()
    with torch.no_grad():
        weight[0, 0] = float("nan")
    try:
        bars.runner.prompt.value = "The dog"
        assert "NaN" in bars.status.value and "h.0.attn.c_attn" in bars.status.value
        assert bars.updates == updates
    finally:
        with torch.no_grad():
            weight[0, 0] = original
    bars.runner.prompt.value = "The cat"
    assert bars.updates == updates + 1 and "update" in bars.status.value


def test_long_prompts_start_with_their_last_tokens(heatmap):
    heatmap.runner.prompt.value = " the" * 40
    assert heatmap.positions.value == (41 - MAX_POSITIONS, 41) and heatmap.positions.max == 41
    shown = [t for t in heatmap.figure.axes[0].texts if t.get_gid() == "input"]
    assert len(shown) == MAX_POSITIONS


def test_default_lens_is_the_logit_lens(model):
    only = explorer(model, make_tokenizer(), prompt="The cat")
    assert only.runner.lens.options == ("logit lens",)


def test_top_k_explorer(model, lenses):
    bars = top_k_explorer(model, make_tokenizer(), lenses, prompt=PROMPT, k=5)
    assert isinstance(bars, TopKExplorer) and bars.updates == 1
    assert bars.layer.value == bars.layer.max == 3  # starts at the output
    assert [label for label, _ in bars.position.options][1:3] == ["1: The", "2: ␣cat"]
    assert bars.position.value == 6

    def widths():
        return np.array([b.get_width() for b in bars.figure.axes[0].patches])

    png = bars.png
    bars.layer.value = 1
    probs, _ = statistic.top_k(bars.trajectory, 5)
    np.testing.assert_allclose(widths(), probs[1, 6].numpy())
    assert bars.png != png
    bars.position.value = 2
    np.testing.assert_allclose(widths(), probs[1, 2].numpy())
    bars.runner.prompt.value = "The dog"
    assert bars.position.value == 2 and len(bars.position.options) == 3
    assert bars.updates == 4


def test_ipywidgets_is_imported_only_in_widgets():
    package = Path(lensbook.__file__).parent
    importers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "ipywidgets" for n in names):
                importers.add(path.relative_to(package).as_posix())
    assert importers == {"widgets.py"}
