"""The Jacobian lens: identity = logit lens, the fit against a brute-force Jacobian, files."""

import json

import pytest
import torch

import lensbook
from lensbook import JacobianLens, LensFileError, LogitLens
from lensbook.core.jacobian import load_jacobian_artifact, save_jacobian_artifact
from lensbook.core.jacobian_fit import fit_jacobian_lens, relative_change
from tests.tiny_models import make_model, sample_ids
from tests.tiny_tokenizer import make_tokenizer

FIT_ARCHS = ("gpt2", "llama", "gemma2", "gpt_neox", "opt_350m_style")


def brute_force_jacobian(model, ids: torch.Tensor, layer: int, skip: int) -> torch.Tensor:
    """The official definition with ``torch.autograd.functional.jacobian``, one prompt.

    ``f(x) = sum_{t in V} h_final[t]`` with block ``layer``'s input replaced by ``x``;
    the full ``(d, seq, d)`` Jacobian, averaged over the source positions in ``V``
    (all but the first ``skip`` and the last).
    """
    parts = lensbook.find_parts(model)
    block, head_entry = parts.layers[layer], parts.final_norm or parts.project_out
    x0 = model(ids, output_hidden_states=True).hidden_states[layer].detach()
    caught = []

    def replace_input(_, args, kwargs):
        if args:
            return (state["x"], *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": state["x"]}

    def f(x):
        state["x"] = x
        caught.clear()
        model(ids)
        return caught[-1][0, skip:-1].sum(dim=0)

    state = {}
    handles = [block.register_forward_pre_hook(replace_input, with_kwargs=True),
               head_entry.register_forward_pre_hook(lambda _, args: caught.append(args[0]))]
    try:
        full = torch.autograd.functional.jacobian(f, x0)  # (d, 1, seq, d)
    finally:
        for handle in handles:
            handle.remove()
    return full[:, 0, skip:-1].mean(dim=1)


@pytest.mark.parametrize("arch", ["gpt2", "gemma2"])
def test_identity_jacobian_lens_is_the_logit_lens_exactly(arch):
    model = make_model(arch)
    ids = sample_ids()
    jacobian = lensbook.layer_logits(model, JacobianLens.from_model(model), ids)
    logit = lensbook.layer_logits(model, LogitLens.from_model(model), ids)
    assert torch.equal(jacobian, logit)


@pytest.mark.parametrize("arch", FIT_ARCHS)
def test_fit_matches_a_brute_force_jacobian(arch):
    model = make_model(arch)
    prompts = [torch.arange(1, 8), torch.arange(20, 30)]  # two lengths: prompts weigh equally
    lens = fit_jacobian_lens(model, prompts, tol=None, skip_first=2, progress=False)
    for layer in range(lens.num_points):
        expected = torch.stack([brute_force_jacobian(model, p[None], layer, skip=2)
                                for p in prompts]).mean(0)
        error = (lens.J[layer] - expected).norm() / expected.norm()
        assert error < 1e-4, (arch, layer, float(error))
    assert not torch.allclose(lens.J[0], torch.eye(lens.J.shape[-1]), atol=1e-2)


def test_rows_found_in_several_passes_equal_one_pass(monkeypatch):
    import lensbook.core.jacobian_fit as fit

    model, ids = make_model("gpt2"), torch.arange(1, 12)
    d = model.config.hidden_size
    assert fit.rows_per_pass(model, 11, budget=1) == 1
    assert fit.rows_per_pass(model, 11, budget=2**40) == d
    assert fit.rows_per_pass(model, 11, budget=2**20) >= 2 * fit.rows_per_pass(model, 22, 2**20)
    whole = fit.prompt_jacobians(model, ids, skip_first=2)
    per_copy = 11 * d * fit.num_layers(model) * fit.SAVED_PER_TOKEN * 4
    monkeypatch.setattr(fit, "PASS_BYTES", 3 * per_copy)  # 3 rows a pass, the last one short
    assert fit.rows_per_pass(model, 11) == 3 and d % 3
    torch.testing.assert_close(fit.prompt_jacobians(model, ids, skip_first=2), whole)
    monkeypatch.undo()
    small = JacobianLens.fit(model, [ids], skip_first=2, progress=False, pass_mb=per_copy / 2**20)
    torch.testing.assert_close(small.J, whole.float())  # one row a pass: the same J


def test_fit_reads_prompts_of_any_length_and_records_provenance():
    model = make_model("gpt2")
    prompts = [torch.arange(1, 6), torch.arange(3, 12), torch.arange(1, 3)]
    with pytest.warns(UserWarning, match="skipping a prompt of 2 tokens"):
        lens = JacobianLens.fit(model, prompts, data="two ranges", progress=False, tol=None,
                                skip_first=1)
    training = lens.config.training
    assert lens.config.n_prompts == 2 and training["tokens"] == 14
    assert training["data"] == "two ranges" and training["dtype"] == "float32"
    assert training["versions"]["torch"] == torch.__version__


def test_early_stop_and_budget():
    model = make_model("gpt2")
    prompts = sample_ids(batch=40, seq=8, seed=4)
    fit = dict(skip_first=2, check_every=5, progress=False)
    budget = fit_jacobian_lens(model, prompts, max_prompts=7, tol=None, **fit)
    assert budget.config.n_prompts == 7
    loose = fit_jacobian_lens(model, prompts, tol=0.5, **fit)
    assert loose.config.n_prompts == 10 and loose.config.training["stopped_early"]
    assert loose.config.training["relative_change"] < 0.5
    strict = fit_jacobian_lens(model, prompts, tol=1e-9, **fit)
    assert strict.config.n_prompts == 40 and not strict.config.training["stopped_early"]


def test_relative_change_is_the_largest_layer():
    a = torch.eye(3).expand(2, 3, 3).clone()
    b = a.clone()
    b[1] *= 1.5
    assert relative_change(b, a) == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def fitted():
    model = make_model("gpt2")
    return model, fit_jacobian_lens(model, sample_ids(batch=3, seq=8), skip_first=2,
                                    progress=False)


@pytest.mark.parametrize("formats", [("pt",), ("safetensors",)])
def test_lens_folder_round_trip(fitted, tmp_path, formats):
    model, lens = fitted
    lensbook.save_lens(lens, tmp_path, formats=formats)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["lens_type"] == "jacobian_lens" and config["n_prompts"] == 3
    assert config["training"]["versions"]["transformers"]
    loaded = lensbook.load_lens(tmp_path, model)
    assert type(loaded) is JacobianLens and torch.equal(loaded.J, lens.J)
    ids = sample_ids()
    assert torch.equal(lensbook.layer_logits(model, loaded, ids),
                       lensbook.layer_logits(model, lens, ids))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_official_artifact_round_trip(fitted, tmp_path, dtype):
    model, lens = fitted
    path = save_jacobian_artifact(lens, tmp_path / "jlens.pt", dtype=dtype)
    raw = torch.load(path, weights_only=True)
    assert raw["source_layers"] == [0, 1] and raw["n_prompts"] == 3 and raw["d_model"] == 32
    assert torch.equal(raw["J"][0], lens.J[1].to(dtype))  # official layer l = after l + 1 blocks
    loaded = load_jacobian_artifact(path, model)
    assert loaded.config.n_prompts == 3
    assert torch.equal(loaded.J[0], torch.eye(32))  # no matrix for the embeddings
    tol = 0 if dtype == torch.float32 else 1e-3
    assert torch.allclose(loaded.J[1:], lens.J[1:], rtol=tol, atol=tol)


def test_official_artifact_as_one_tensor_with_some_layers(fitted, tmp_path):
    model, lens = fitted
    path = tmp_path / "jlens.pt"
    torch.save({"J": lens.J[2:3].clone(), "n_prompts": 3, "source_layers": [1], "d_model": 32},
               path)
    loaded = load_jacobian_artifact(path, model)
    assert torch.equal(loaded.J[2], lens.J[2]) and torch.equal(loaded.J[1], torch.eye(32))


def test_mismatched_model_is_a_clear_error(fitted, tmp_path):
    _, lens = fitted
    wide = make_model("llama")  # same width, another family: fine; now change the shape
    path = tmp_path / "jlens.pt"
    torch.save({"J": torch.zeros(3, 16, 16), "n_prompts": 1, "source_layers": [0, 1, 2],
                "d_model": 16}, path)
    with pytest.raises(ValueError, match="d_model=16 does not fit"):
        load_jacobian_artifact(path, wide)
    torch.save({"J": {layer: torch.zeros(32, 32) for layer in range(3)}, "n_prompts": 1,
                "source_layers": [0, 1, 2], "d_model": 32}, path)
    with pytest.raises(ValueError, match=r"source layers .* do not fit"):
        load_jacobian_artifact(path, wide)
    lensbook.save_lens(lens, tmp_path / "folder")
    config = json.loads((tmp_path / "folder" / "config.json").read_text())
    (tmp_path / "folder" / "config.json").write_text(json.dumps({**config, "d_model": 16}))
    with pytest.raises(ValueError, match="does not fit"):
        lensbook.load_lens(tmp_path / "folder", wide)


def test_unsafe_artifact_is_refused(fitted, tmp_path):
    model, _ = fitted
    path = tmp_path / "evil.pt"
    torch.save({"J": torch.eye(32)[None], "source_layers": [0], "d_model": 32,
                "extra": object.__new__(SafeLooking)}, path)
    with pytest.raises(LensFileError, match="refusing"):
        load_jacobian_artifact(path, model)
    torch.save({"n_prompts": 1}, path)
    with pytest.raises(LensFileError, match="missing"):
        load_jacobian_artifact(path, model)


class SafeLooking:
    """An arbitrary class: unpickling it is what ``weights_only=True`` refuses."""


def test_explorer_offers_the_jacobian_lens(fitted):
    model, lens = fitted
    lenses = {"logit lens": LogitLens.from_model(model), lens.label: lens}
    for make in (lensbook.widgets.explorer, lensbook.widgets.top_k_explorer):
        view = make(model, make_tokenizer(), lenses, prompt="The cat")
        assert view.runner.lens.options == ("logit lens", "Jacobian lens")
        logit = view.trajectory.log_probs
        view.runner.lens.value = "Jacobian lens"
        assert view.trajectory.lens_label == "Jacobian lens"
        assert not torch.equal(view.trajectory.log_probs[:-1], logit[:-1])
        assert torch.equal(view.trajectory.log_probs[-1], logit[-1])  # the model's output


def test_lens_costs_come_from_provenance(fitted):
    model, lens = fitted
    tuned = lensbook.TunedLens.from_model(model)
    config = lensbook.TrainConfig(steps=2, tokens_per_step=32, seq_len=8, batch_size=2,
                                  progress=False)
    tuned, _ = lensbook.train_lens(model, sample_ids(batch=8, seq=8), config, tuned)
    costs = lensbook.lens_costs({"logit": LogitLens.from_model(model), "J": lens,
                                 "tuned": tuned})
    assert costs.loc["logit", "tokens"] == 0 and costs.loc["logit", "made by"] == "nothing to learn"
    assert costs.loc["J", "tokens"] == 24 and costs.loc["J", "made by"] == "estimated"
    assert costs.loc["tuned", "tokens"] == 64 and costs.loc["tuned", "made by"] == "trained"
    assert costs.loc["tuned", "seconds"] > 0 and costs.loc["J", "seconds"] > 0


def test_sublayers_are_a_clear_error():
    with pytest.raises(NotImplementedError, match="mid-block"):
        JacobianLens.from_model(make_model("gpt2"), sublayers=True)
