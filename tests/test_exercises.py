"""The exercise system: checks explain failures, the generator drops solutions, student
notebooks run and print an explanation at every check instead of a traceback."""

import json
import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

import lensbook
from lensbook.analysis import iterative
from lensbook.analysis.causal_basis import CausalBasis, mean_ablate
from lensbook.analysis.depth import TextDepth
from lensbook.exercises import (
    ExerciseNotSolved,
    core,
    nb01,
    nb02,
    nb03,
    nb04,
    nb05,
    nb06,
    nb07,
    nb08,
    nb09,
    nb10,
    nb11,
    nb12,
    nb13,
    nb14,
    strict,
    student_mode,
)
from lensbook.exercises.student import strip_code, strip_markdown, student_notebook
from lensbook.training.history import TrainHistory

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WITH_EXERCISES = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")
                        if "# BEGIN SOLUTION" in p.read_text())
CHECK = re.compile(r"\bnb\d\d\.check_\w+\(")


@pytest.fixture(autouse=True)
def raising():
    """Checks raise in these tests (as in the solution notebooks); student mode afterwards."""
    strict()
    yield
    student_mode()


def fails(match):
    return pytest.raises(ExerciseNotSolved, match=match)


# The mode switch ---------------------------------------------------------------------------
@core.exercise("Exercise 9")
def _demo(answer):
    core.require(answer == 42, "the answer must be 42")
    return "42 it is"


def test_modes_print_or_raise(capsys):
    _demo(42)
    assert capsys.readouterr().out == "✓ Exercise 9: 42 it is\n"
    with fails("Exercise 9: the answer must be 42"):
        _demo(None)
    student_mode()
    _demo(None)  # no exception
    assert capsys.readouterr().out == "✗ Exercise 9 is not solved yet: the answer must be 42\n"


def test_exercise_not_solved_is_an_assertion_and_a_lensbook_error():
    assert issubclass(ExerciseNotSolved, AssertionError)
    assert issubclass(ExerciseNotSolved, lensbook.LensbookError)


# The generator -------------------------------------------------------------------------------
SOLVED = """answer = None  # your code here
# BEGIN SOLUTION
answer = 6 * 7
# END SOLUTION
nb01.check_first_layer(answer, traj)"""


def test_strip_code_keeps_stub_and_check():
    stub = "answer = None  # your code here\nnb01.check_first_layer(answer, traj)"
    assert strip_code(SOLVED) == stub
    assert strip_code("x = 1") == "x = 1"
    with pytest.raises(ValueError, match="never closed"):
        strip_code("# BEGIN SOLUTION\nx = 1")
    with pytest.raises(ValueError, match="without"):
        strip_code("x = 1\n# END SOLUTION")


def test_strip_markdown_drops_solution_details_only():
    text = ("Question?\n\n<details><summary>Solution</summary>\n\nsecret\n</details>\n"
            "<details><summary>Hint</summary>look</details>")
    assert strip_markdown(text) == "Question?\n\n<details><summary>Hint</summary>look</details>"


def test_student_notebook_on_a_synthetic_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Exercises\n<details><summary>Solutions</summary>x"
                                      "</details>"),
        nbformat.v4.new_code_cell(SOLVED, outputs=[nbformat.v4.new_output(
            "stream", text="✓ done")], execution_count=3)])
    out = student_notebook(json.loads(nbformat.writes(nb)))
    assert out["cells"][0]["source"] == "## Exercises"
    code = out["cells"][1]
    assert "6 * 7" not in code["source"] and "check_first_layer" in code["source"]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert len(nb.cells[1].outputs) == 1  # the source is unchanged


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_generated_student_notebooks_have_no_solution_and_every_check(path):
    source = json.loads(path.read_text())
    student = student_notebook(source)
    assert len(student["cells"]) == len(source["cells"])
    for before, after in zip(source["cells"], student["cells"], strict=True):
        text = "".join(after["source"])
        assert "SOLUTION" not in text and "<summary>Solution" not in text
        assert CHECK.findall("".join(before["source"])) == CHECK.findall(text)
        assert before.get("id") == after.get("id")
    checks = [c for c in student["cells"] if CHECK.search("".join(c["source"]))]
    assert len(checks) >= 3, "every notebook has at least three checked exercises"
    for cell in checks:  # every stub is still there
        assert "None  # your code here" in "".join(cell["source"])


# Checks of notebook 01 -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = lensbook.load_model("lensbook-tiny")
    return model, tokenizer, lensbook.LogitLens.from_model(model)


@pytest.fixture(scope="module")
def traj(tiny):
    model, tokenizer, lens = tiny
    prompt = "The for statement is used to iterate over the items of a list"
    return lensbook.trajectory(model, tokenizer, lens, [prompt])[0]


def test_nb01_first_layer(traj, capsys):
    depth = int(lensbook.prediction_depth(traj)[-1])
    nb01.check_first_layer(depth, traj)
    assert capsys.readouterr().out.startswith("✓")
    with fails("must be an int, got None"):
        nb01.check_first_layer(None, traj)
    assert 0 < depth < traj.num_layers, "the prompt should test both failures"
    with fails(f"layer {depth} already predicts"):
        nb01.check_first_layer(depth + 1, traj)
    with fails("look higher up"):
        nb01.check_first_layer(depth - 1, traj)


def test_nb01_confidence(traj):
    has_next = traj.targets >= 0
    probs = traj.log_probs[:, has_next].exp()
    right = pd.DataFrame({"confidence": probs.max(-1).values.mean(1),
                          "accuracy": (probs.argmax(-1) == traj.targets[has_next]).float().mean(1)})
    nb01.check_confidence(right, traj)
    with fails("one row per layer"):
        nb01.check_confidence(right.iloc[:-1], traj)
    with fails("lacks the column"):
        nb01.check_confidence(right[["confidence"]], traj)
    with fails("confidence does not follow its definition"):
        nb01.check_confidence(right.assign(confidence=right.confidence * 0.9), traj)


def test_nb01_copy(tiny):
    prompt = "for item in items:\n    print("
    t = lensbook.trajectory(*tiny[:2], tiny[2], [prompt])[0]
    depth = int(lensbook.prediction_depth(t)[-1])
    nb01.check_copy(prompt, depth, *tiny)
    with fails("not copying"):
        nb01.check_copy("Alice met Bob. Then Alice greeted", 6, *tiny)
    with fails("the copy layer is the first layer"):
        nb01.check_copy(prompt, (depth + 1) % 7, *tiny)
    with fails("non-empty string"):
        nb01.check_copy(None, None, *tiny)


# Checks of notebook 02 -------------------------------------------------------------------------
def history(losses):
    return TrainHistory(loss=losses, lr=[1.0] * len(losses), grad_norm=[1.0] * len(losses),
                        seconds=[1.0] * len(losses), tokens_per_step=8)


def test_nb02_gain():
    curves = history([[4.0, 2.0], [3.0, 1.5], [2.0, 1.0], [1.0, 1.0], [1.0, 0.5]]).to_frame()
    right = pd.Series({0: 4.0 - 4 / 3, 1: 2.0 - 2.5 / 3})
    nb02.check_gain(right, curves)
    with fails("one entry per"):
        nb02.check_gain(right.iloc[:1], curves)
    with fails("does not follow its definition"):
        nb02.check_gain(right * 2, curves)


def test_nb02_optimizer():
    sgd = history([[4.0, 2.0], [2.0, 1.0], [1.0, 0.5]])
    adam = history([[4.0, 2.0], [3.0, 1.8]])
    nb02.check_optimizer(adam, False, sgd)
    with fails("adam_ahead must be False"):
        nb02.check_optimizer(adam, True, sgd)
    with fails("did not fall"):
        nb02.check_optimizer(history([[1.0, 1.0], [2.0, 2.0]]), False, sgd)
    with fails("TrainHistory"):
        nb02.check_optimizer(None, None, sgd)


def test_nb02_bias_only_failures(tiny):
    model = tiny[0]
    chunks = lensbook.TokenChunks(torch.randint(0, 4096, (2, 32)), 64, 200)
    with fails("expected a TunedLens"):
        nb02.check_bias_only(None, model, chunks)
    with fails("untrained"):
        nb02.check_bias_only(lensbook.TunedLens.from_model(model, bias_only=True), model, chunks)
    full = lensbook.TunedLens.from_model(model)
    with torch.no_grad():
        full.translators[0].weight.fill_(0.01)
    with fails("no matrix"):
        nb02.check_bias_only(full, model, chunks)


# Checks of notebook 03 -------------------------------------------------------------------------
def results_frame():
    rows = []
    for lens, scale in (("logit lens", 3.0), ("tuned lens", 1.0)):
        for layer in range(3):
            for metric, value in (("kl", scale * (3 - layer) * (layer + 1)), ("ce", 3.0),
                                  ("entropy", 2.0 + layer)):
                rows += [(lens, layer, metric, value, "nats/token"),
                         (lens, layer, metric, value / 2, "bits/byte")]
    return pd.DataFrame(rows, columns=["lens", "layer", "metric", "value", "unit"])


def test_nb03_largest_ratio():
    kl = pd.DataFrame({"logit lens": [9.0, 4.0, 1.0], "tuned lens": [1.0, 2.0, 0.5]})
    nb03.check_largest_ratio(0, kl)
    with fails("smaller than at layer 0"):
        nb03.check_largest_ratio(1, kl)


def test_nb03_small_eval():
    results = results_frame()
    smaller = results.assign(value=results.value * 1.01)
    nb03.check_small_eval(smaller, results)
    with fails("no bits/byte rows"):
        nb03.check_small_eval(smaller[smaller.unit == "nats/token"], results)
    with fails("equals results exactly"):
        nb03.check_small_eval(results, results)


def test_nb03_overconfident():
    results = results_frame()
    right = pd.Series({0: True, 1: False, 2: False})  # entropy 2, 3, 4 against ce 3
    nb03.check_overconfident(right, results)
    with fails("over-confident where its entropy"):
        nb03.check_overconfident(~right, results)
    with fails("one entry per"):
        nb03.check_overconfident(right.iloc[:2], results)


# Checks of notebook 04 -------------------------------------------------------------------------
def depths():
    text = TextDepth(depth=torch.tensor([0, 1, 2, 2, 1, 0]), output_ids=torch.tensor(
        [5, 6, 7, 7, 6, 5]), labels=list("abcdef"), num_layers=2, lens_label="tuned lens")
    return {"tuned lens": [text]}


def test_nb04_gaps():
    ids = torch.tensor([5] * 30 + list(range(8, 2000)))  # 6 and 7 are rare either way
    nb04.check_gaps({20: nb04.depth_gap(depths(), lensbook.most_frequent(ids, 20)),
                     1000: nb04.depth_gap(depths(), lensbook.most_frequent(ids, 1000))},
                    depths(), ids)
    with fails("needs the keys 20 and 1000"):
        nb04.check_gaps({20: 1.0}, depths(), ids)
    with fails("must be a dict"):
        nb04.check_gaps(None, depths(), ids)


def test_nb04_deepest():
    table = lensbook.depth_table(depths(), {5})
    nb04.check_deepest(7, table, min_count=2)
    with fails("larger mean depth"):
        nb04.check_deepest(5, table, min_count=2)
    with fails("fewer than 3 times"):
        nb04.check_deepest(7, table, min_count=3)


def test_nb04_code_vs_prose(tiny):
    model, tokenizer, _ = tiny
    lens = lensbook.load_published(model)
    code = "def area(self):\n    return self.width * self.height"
    prose = "The weather was mild all week, and the children played outside."
    got = lensbook.text_depths(model, tokenizer, {"t": lens}, [code, prose])["t"]
    truth = bool(got[0].depth.float().mean() < got[1].depth.float().mean())
    nb04.check_code_vs_prose(code, prose, truth, model, tokenizer, lens)
    with fails(f"code_earlier must be {truth}"):
        nb04.check_code_vs_prose(code, prose, not truth, model, tokenizer, lens)
    with fails("should be Python"):
        nb04.check_code_vs_prose(prose, prose, truth, model, tokenizer, lens)


# Checks of notebook 06 -------------------------------------------------------------------------
def covariances(L=4, d=6):
    x = torch.randn(L, 50, d, generator=torch.Generator().manual_seed(0)).double()
    x[..., 0] *= 10  # an outlier dimension
    return torch.stack([torch.cov(layer.T) for layer in x])


def test_nb06_outliers():
    covs = covariances()
    similarity = lensbook.covariance_similarity(covs)
    nb06.check_outliers(lensbook.covariance_similarity(covs, drop_outliers=2), covs, similarity)
    with fails("does not follow its definition"):
        nb06.check_outliers(similarity, covs, similarity)
    with fails("must be a torch.Tensor"):
        nb06.check_outliers(None, covs, similarity)


def test_nb06_logit_penalty():
    rows = [("t", i, j, "penalty", float(i - j) if i >= 0 else 5.0, "nats/token")
            for i in (-1, 0, 1, 2) for j in range(3)]
    frame = pd.DataFrame(rows, columns=["lens", "translator", "layer", "metric", "value", "unit"])
    right = pd.Series({1: 6.0, 2: 6.0})
    nb06.check_logit_penalty(right, frame)
    with fails("no logit-lens rows"):
        nb06.check_logit_penalty(right, frame[frame.translator >= 0])
    with fails("does not follow its definition"):
        nb06.check_logit_penalty(right + 1, frame)


def test_nb06_variance_rho():
    covs = covariances()
    penalty = torch.rand(4, 4, generator=torch.Generator().manual_seed(1))
    nb06.check_variance_rho(nb06.variance_rho(covs, penalty), covs, penalty)
    with fails("in \\[-1, 1\\]"):
        nb06.check_variance_rho(2.0, covs, penalty)
    with fails("must be a number, got None"):
        nb06.check_variance_rho(None, covs, penalty)


def test_transfer_matrix_no_translator_row_is_the_logit_lens(tiny):
    model, _, logit = tiny
    ids = torch.randint(0, 4096, (1, 24), generator=torch.Generator().manual_seed(0))
    lens = lensbook.load_published(model)
    frame = lensbook.transfer_matrix(model, lens, ids, no_translator=True)
    ce = frame[(frame.metric == "ce") & (frame.unit == "nats/token")]
    none = ce[ce.translator == -1].set_index("layer").value
    own = lensbook.pivot(lensbook.evaluate_lenses(model, {"logit": logit}, ids), "ce",
                         "nats/token")["logit"]
    assert none.to_numpy() == pytest.approx(own.iloc[:-1].to_numpy(), rel=1e-5)
    assert set(frame.translator) == {-1, *range(lens.num_points)}


# Checks of notebooks 05, 07-11 ------------------------------------------------------------------
def test_nb05_last_position():
    rng = np.random.default_rng(0)
    full = {"len": {name: (rng.normal(size=(4, 3 * 2 * 3)), rng.normal(size=(4, 3 * 2 * 3)))
                    for name in ("tuned lens", "logit lens")}}
    last = {"len": {name: tuple(nb05.last_position(x, 3, 2) for x in pair)
                    for name, pair in full["len"].items()}}
    nb05.check_last_position(last, full, 2, 3)
    first = {"len": {name: tuple(x.reshape(4, 3, 2, 3)[:, :, 0].reshape(4, -1) for x in pair)
                     for name, pair in full["len"].items()}}
    with fails("other columns than the last position"):
        nb05.check_last_position(first, full, 2, 3)
    with fails("expected a dict"):
        nb05.check_last_position(None, full, 2, 3)


def test_nb05_counts_and_best_layer():
    nb05.check_counts([{"lens": "tokens", "auroc": 0.95}])
    with fails("does not separate"):
        nb05.check_counts([{"lens": "tokens", "auroc": 0.55}])
    rows = [{"lens": f"layer {i}", "auroc": a} for i, a in enumerate((0.5, 0.7, 0.6))]
    nb05.check_best_layer(rows, 1, 3)
    with fails("layer 1 has a higher AUROC than layer 2"):
        nb05.check_best_layer(rows, 2, 3)


def copy_summary(top1_second, ce=(3.0, 2.0, 1.0)):
    rows = []
    for case in ("held-out text", "random tokens"):
        for occurrence, rates in (("first", (0.0, 0.0)), ("second", top1_second),
                                  ("fourth", top1_second)):
            for layer, rate in enumerate(rates):
                rows.append((case, "tuned lens", occurrence, layer,
                             ce[("first", "second", "fourth").index(occurrence)], rate))
    return pd.DataFrame(rows, columns=["case", "lens", "occurrence", "layer", "cross_entropy",
                                       "top1"])


def test_nb07_checks():
    summary = copy_summary((0.1, 0.3))
    nb07.check_frequent(summary, False, 0.5)
    with fails("copies must be True"):
        nb07.check_frequent(copy_summary((0.1, 0.6)), False, 0.5)
    nb07.check_fourth(summary, True)
    with fails("fourth_easier must be True"):
        nb07.check_fourth(summary, False)
    nb07.check_context(torch.tensor([3.0, 2.5]), True, summary)
    with fails("copying_helps must be False"):
        nb07.check_context(torch.tensor([3.0, 1.5]), True, summary)
    with fails("one value per layer"):
        nb07.check_context(torch.tensor([3.0]), True, summary)
    nb07.check_threshold(0.3, summary)
    with fails("still has a copy layer"):
        nb07.check_threshold(0.1, summary)
    with fails("no copy layer"):
        nb07.check_threshold(0.5, summary)


def test_nb08_checks(tiny):
    import matplotlib

    matplotlib.use("Agg")
    model, tokenizer, _ = tiny
    lens = lensbook.load_published(model)
    prompt = "print(len(items"
    t = lensbook.trajectory(model, tokenizer, lens, [prompt])[0]
    depth = int(lensbook.prediction_depth(t)[-1])
    nb08.check_bracket(prompt, depth, model, tokenizer, lens)
    with fails("not a closing bracket"):
        nb08.check_bracket("x = (1 + 2) *", depth, model, tokenizer, lens)
    with fails("must open a bracket"):
        nb08.check_bracket("x = 1", depth, model, tokenizer, lens)
    sizes = pd.DataFrame({"model": ["a", "a", "b", "b", "b"], "lens": "tuned lens",
                          "layer": [0, 1, 0, 1, 2], "depth": [0, 1, 0, 0.5, 1],
                          "value": [1.0, 0.5, 1.0, 0.7, 0.4]})
    fig = lensbook.plotting.plot_models_by_layer(sizes, x="layer")
    nb08.check_by_layer(fig, "b", sizes)
    with fails("'a' has 1 layers"):
        nb08.check_by_layer(fig, "a", sizes)
    with fails("x axis must be the layer"):
        nb08.check_by_layer(lensbook.plotting.plot_models_by_layer(sizes), "b", sizes)
    families = sizes.assign(lens="logit lens")
    nb08.check_worst(("a", 0), families)
    with fails("not the highest"):
        nb08.check_worst(("b", 2), families)


def test_nb09_ratio_and_artifact(tiny, tmp_path):
    kl = pd.DataFrame({"logit lens": [9.0, 4.0], "Jacobian lens": [3.0, 1.0]})
    nb09.check_largest_ratio(1, kl)
    with fails("smaller than at layer 1"):
        nb09.check_largest_ratio(0, kl)
    model = tiny[0]
    lens = lensbook.JacobianLens.from_model(model)
    path = lensbook.save_jacobian_artifact(lens, tmp_path / "j.pt")
    nb09.check_artifact(path, 0, lens, model)
    with fails("not layer 3"):
        nb09.check_artifact(path, 3, lens, model)
    with fails("must name the file"):
        nb09.check_artifact(None, None, lens, model)


def test_nb10_checks(tiny):
    model = tiny[0]
    ids = torch.randint(0, 4096, (2, 16), generator=torch.Generator().manual_seed(0))
    summary = iterative.alignment_summary(iterative.update_alignment(model, ids, at="output"))
    changes = bool((~summary["negative"].between(*nb10.NO_DIRECTION)).any())
    nb10.check_output_alignment(summary, changes, model, ids)
    with fails(f"changes must be {changes}"):
        nb10.check_output_alignment(summary, not changes, model, ids)
    half = iterative.layer_deletion(model, ids, keep=0.5)
    full = iterative.layer_deletion(model, ids)
    ratio = half.set_index("layer").increase / full.set_index("layer").increase
    nb10.check_half_update(half, ratio, model, ids)
    with fails("keep=0.5"):
        nb10.check_half_update(full, ratio, model, ids)
    curves = pd.DataFrame({"lens": "tuned lens", "layer": [0, 1, 2], "layers": 2,
                           "value": [0.3, 0.01, 0.02]})
    nb10.check_tuned_echo(curves, 1)
    with fails("is 1, not 0"):
        nb10.check_tuned_echo(curves, 0)


def test_nb11_checks():
    penalty, gap = pd.Series({0: 0.1, 1: 0.3}), pd.Series({0: 5.0, 1: 1.0})
    nb11.check_worst_layer(1, penalty, gap)
    with fails("layer 1 pays a larger penalty"):
        nb11.check_worst_layer(0, penalty, gap)
    rows = [(lens, layer, metric, value + layer, "bits/byte")
            for lens, value in (("transfer", 1.0), ("re-fit", 0.8), ("logit lens", 3.0))
            for layer in range(2) for metric in ("kl", "ce")]
    rows += [("output", 2, "ce", 1.0, "bits/byte")]
    frame = pd.DataFrame(rows, columns=["lens", "layer", "metric", "value", "unit"])
    right = pd.Series({0: 0.2, 1: 0.2})
    nb11.check_other_slice(frame, right)
    nb11.check_ce_penalty(right, frame)
    with fails("does not follow its definition"):
        nb11.check_ce_penalty(right * 2, frame)
    with fails("'transfer' and 're-fit'"):
        nb11.check_other_slice(frame[frame.lens == "logit lens"], right)


def test_nb12_spearman():
    influence = pd.DataFrame({"lens": ["tuned lens"] * 4 + ["logit lens"] * 4,
                              "lens_influence": [1.0, 2.0, 3.0, 100.0] * 2,
                              "model_influence": [1.0, 3.0, 2.0, 4.0] * 2})
    nb12.check_spearman(0.8, influence)  # ranks 1234 vs 1324
    rows = influence[influence.lens == "tuned lens"]
    with fails("Pearson's r of the raw influences"):
        nb12.check_spearman(rows.lens_influence.corr(rows.model_influence), influence)
    with fails("does not follow its definition"):
        nb12.check_spearman(0.5, influence)
    with fails("must be a number"):
        nb12.check_spearman(None, influence)


def test_nb12_mean_ablation():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(10, 6, generator=g)
    vectors = torch.linalg.qr(torch.randn(6, 2, generator=g))[0].T
    basis = CausalBasis(3, vectors, torch.tensor([2.0, 1.0]), torch.randn(6, generator=g))
    v = vectors[0]
    nb12.check_mean_ablation(mean_ablate(h, v, basis.mean), h, basis)
    with fails("component along v"):
        nb12.check_mean_ablation(h, h, basis)
    with fails("orthogonal to v must not change"):
        nb12.check_mean_ablation(basis.mean.expand_as(h).clone(), h, basis)
    with fails("shape"):
        nb12.check_mean_ablation(h[:3], h, basis)


def test_nb12_wrong_way():
    cells = pd.DataFrame({"lens": ["a", "a", "b", "b", "a", "b"], "layer": [1, 1, 1, 1, 2, 2],
                          "alignment": [-0.5, 0.5, 0.2, 0.3, -1.0, -1.0]})
    nb12.check_wrong_way(pd.Series({"a": 0.5, "b": 0.0}), cells)
    with fails("does not follow its definition"):  # the last layer counted
        nb12.check_wrong_way(pd.Series({"a": 2 / 3, "b": 1 / 3}), cells)
    with fails("one entry per"):
        nb12.check_wrong_way(pd.Series({"a": 0.5}), cells)


def _final_block_frame():
    from lensbook.analysis.final_block import WITH, WITHOUT
    rows = []
    for lens, without, with_ in (("logit lens", [9.0, 3.0, 2.0], [4.0, 2.5, 1.5]),
                                 ("tuned lens (trained without)", [3.0, 2.2, 1.8], [3.5, 2.2, 1.6]),
                                 ("tuned lens (trained with)", [6.0, 2.4, 1.9], [3.1, 2.0, 1.5])):
        for layer in range(3):
            rows += [(lens, WITHOUT, layer, "ce", without[layer], "bits/byte"),
                     (lens, WITH, layer, "ce", with_[layer], "bits/byte")]
    rows += [("logit lens", WITHOUT, 2, "kl", 0.17, "nats/token"),
             ("output", "", 3, "ce", 1.5, "bits/byte")]
    return pd.DataFrame(rows, columns=["lens", "variant", "layer", "metric", "value", "unit"])


def test_nb13_checks():
    frame = _final_block_frame()
    nb13.check_biggest_gain(0, frame)
    with fails("more at layer 0 than at layer 2"):
        nb13.check_biggest_gain(2, frame)
    nb13.check_last_layer_is_the_model(1e-7, frame)
    with fails("pass `replay`"):
        nb13.check_last_layer_is_the_model(0.17, frame)
    with fails("never negative"):
        nb13.check_last_layer_is_the_model(-0.5, frame)
    right = pd.Series({0: 0.4, 1: 0.2, 2: 0.1})
    nb13.check_mismatch(right, frame)
    with fails("does not follow its definition"):
        nb13.check_mismatch(-right, frame)


def test_nb14_checks():
    table = pd.DataFrame({"position": [0, 2], "learned": [20, 10], "tuned lens": [1, 0]})
    targets = torch.tensor([5, 7, 5, 1])
    nb14.check_accuracy(0.5, table, targets)
    with fails("does not follow its definition"):
        nb14.check_accuracy(0.75, table, targets)
    ckpt = torch.tensor([[5, 0, 5, 0], [1, 0, 5, 0], [5, 0, 5, 0]])
    nb14.check_learned_step(30, 0, ckpt, targets, [10, 20, 30])
    with fails("forgotten again"):
        nb14.check_learned_step(10, 0, ckpt, targets, [10, 20, 30])
    with fails("one of the checkpoints' steps"):
        nb14.check_learned_step(15, 0, ckpt, targets, [10, 20, 30])
    assert nb14.first_example(table) == 0
    with fails("no example"):
        nb14.first_example(table.iloc[:0])
    nb14.check_by_depth(pd.Series({0: 10.0, 1: 20.0}), table)
    with fails("one entry per"):
        nb14.check_by_depth(pd.Series({0: 10.0}), table)


# Student notebooks, executed -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_student_notebook_runs_and_every_check_explains(path, tmp_path):
    """The stubs fail their checks with the invariant's message, never with a traceback."""
    from nbclient import NotebookClient

    student_mode()
    nb = nbformat.reads(json.dumps(student_notebook(json.loads(path.read_text()))), 4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"{path.stem}: {time.perf_counter() - start:.0f} s")
    checks = [c for c in nb.cells if c.cell_type == "code" and CHECK.search(c.source)]
    assert checks
    for cell in nb.cells:
        assert all(o.output_type != "error" for o in cell.get("outputs", [])), cell.source
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert re.search(r"^✗ Exercise \d+ is not solved yet: \S.{20,}", text, re.M), \
            (cell.source, text)
