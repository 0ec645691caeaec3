"""Sub-layer lenses: the stream after each block's attention, on every tiny architecture.

The acceptance check: the mid-block state that lensbook captures (``ReadPoint(i,
"attn")``) plus the MLP's contribution (caught here by a hook of its own) is exactly
the next row's residual ``hidden_states[i + 1]``.
"""

import pytest
import torch

import lensbook
from lensbook import LogitLens, TunedLens, layer_logits, load_lens, save_lens
from lensbook.core.model import ReadPoint, hidden_states, read, sublayer_points
from lensbook.core.parts import find_parts
from lensbook.core.run import trajectories_from_ids
from lensbook.core.sublayer import NoMidPointError, capture_mid, parallel_family
from tests.tiny_models import CONFIGS, make_model, sample_ids

PARALLEL = {"gptj": "GPT-J", "gpt_neox": "use_parallel_residual", "cohere": "Cohere"}
SEQUENTIAL = sorted(set(CONFIGS) - set(PARALLEL))


def _add(mid, out, block):
    return mid + out


def _add_flat(mid, out, block):  # OPT adds the MLP on (tokens, d) and reshapes back
    return (mid.reshape(-1, mid.shape[-1]) + out).view(mid.shape)


def _add_then_norm(mid, out, block):  # post-LN OPT: h' = LN(m + mlp(m))
    return block.final_layer_norm(mid.reshape(-1, mid.shape[-1]) + out).view(mid.shape)


def _add_scaled(mid, out, block):  # Granite scales each branch by residual_multiplier
    return mid + out * block.residual_multiplier


# family -> (module whose output is the MLP branch's contribution, how it joins the stream).
# Written from each family's modeling code, independently of lensbook/core/sublayer.py.
MLP_BRANCH = {
    **dict.fromkeys(("gpt2", "gpt_neo", "llama", "mistral", "qwen2", "qwen3", "gemma", "phi3"),
                    ("mlp", _add)),
    "opt": ("fc2", _add_flat),
    "opt_350m_style": ("fc2", _add_then_norm),
    "bloom": ("mlp.dense_4h_to_h", _add),  # BloomMLP adds the residual itself
    **dict.fromkeys(("gemma2", "gemma3", "olmo2"), ("post_feedforward_layernorm", _add)),
    "granite": ("mlp", _add_scaled),
}


def test_every_architecture_is_classified():
    assert set(MLP_BRANCH) == set(SEQUENTIAL)
    for name in CONFIGS:
        family = parallel_family(make_model(name).config)
        assert (family is not None) == (name in PARALLEL), name


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_mid_point_plus_mlp_is_the_next_residual_exactly(name):
    """``hidden_states[i + 1]`` for inner blocks; the last block's own output (Hugging
    Face applies the final norm to ``hidden_states[L]``)."""
    model = make_model(name)
    blocks = find_parts(model).layers
    L = model.config.num_hidden_layers
    branch, join = MLP_BRANCH[name]
    outs, last = {}, {}
    handles = [blocks[i].get_submodule(branch).register_forward_hook(
        lambda m, a, out, i=i: outs.__setitem__(i, out)) for i in range(L)]
    handles.append(blocks[-1].register_forward_hook(
        lambda m, a, out: last.__setitem__("h", out[0] if isinstance(out, tuple) else out)))
    try:
        hs = hidden_states(model, sample_ids(), points=sublayer_points(L))
    finally:
        for handle in handles:
            handle.remove()
    nexts = [*hs[1:L], last["h"]]
    for i in range(L):
        mid = read(hs, ReadPoint(i, "attn"))
        assert mid.shape == hs[i].shape
        assert not torch.equal(mid, hs[i]) and not torch.equal(mid, nexts[i])
        with torch.no_grad():
            rebuilt = join(mid, outs[i], blocks[i])
        assert torch.equal(rebuilt, nexts[i]), f"{name} block {i}"


@pytest.mark.parametrize("name", sorted(PARALLEL))
def test_parallel_families_raise_a_clear_error(name):
    model = make_model(name)
    with pytest.raises(NoMidPointError, match=PARALLEL[name]):
        LogitLens.from_model(model, sublayers=True)
    with pytest.raises(NoMidPointError, match="in parallel"):
        TunedLens.from_model(model, sublayers=True)
    with pytest.raises(NoMidPointError, match=PARALLEL[name]):
        hidden_states(model, sample_ids(), points=[ReadPoint(1, "attn")])
    assert not lensbook.has_mid_points(model)


def test_sequential_families_have_mid_points():
    assert lensbook.has_mid_points(make_model("gpt2"))


def test_unknown_family_names_the_table():
    model = make_model("llama")
    model.config.model_type = "new_family"
    with pytest.raises(NoMidPointError, match="MID_POINTS"):
        LogitLens.from_model(model, sublayers=True)
    assert not lensbook.has_mid_points(model)


def test_hooks_are_removed():
    model = make_model("gpt2")
    with capture_mid(model, [0, 1]) as mid:
        hidden_states(model, sample_ids())
    assert set(mid) == {0, 1}
    mid.clear()
    hidden_states(model, sample_ids())
    assert not mid


def test_uncaptured_mid_point_says_how_to_capture_it():
    model = make_model("gpt2")
    with pytest.raises(KeyError, match="points="):
        read(hidden_states(model, sample_ids()), ReadPoint(1, "attn"))


@pytest.mark.parametrize("name", ["gpt2", "gemma2", "opt_350m_style"])
def test_logit_lens_rows_decode_the_mid_points(name):
    model = make_model(name)
    lens = LogitLens.from_model(model, sublayers=True)
    L = model.config.num_hidden_layers
    ids = sample_ids()
    rows = layer_logits(model, lens, ids)
    assert rows.shape[0] == 2 * L + 1
    hs = hidden_states(model, ids, points=lens.read_points())
    plain = layer_logits(model, LogitLens.from_model(model), ids)
    torch.testing.assert_close(rows[0::2], plain, atol=0, rtol=0)  # resid rows unchanged
    with torch.no_grad():
        expected = lens.unembed(hs.mid[1])
    torch.testing.assert_close(rows[3], expected, atol=1e-6, rtol=1e-5)


def test_trajectory_rows_are_labelled():
    model = make_model("llama")
    lens = TunedLens.from_model(model, sublayers=True)
    traj = trajectories_from_ids(model, {"": lens}, [[1, 5, 9, 4]])[""][0]
    assert traj.layer_names() == ["0", "0.attn", "1", "1.attn", "2", "2.attn", "output"]
    assert traj.log_probs.shape[0] == 7


def test_heatmap_shows_the_attn_rows():
    from lensbook.plotting import plot_trajectory

    model = make_model("gpt2")
    lens = LogitLens.from_model(model, sublayers=True)
    traj = trajectories_from_ids(model, {"": lens}, [[1, 5, 9, 4]])[""][0]
    fig = plot_trajectory(traj)
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"1.attn", "2", "output"} <= texts


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_sublayer_tuned_lens_round_trips(tmp_path, fmt):
    model = make_model("qwen2")
    lens = TunedLens.from_model(model, sublayers=True)
    assert len(lens.translators) == 2 * model.config.num_hidden_layers
    with torch.no_grad():
        for p in lens.translators.parameters():
            p.normal_(0, 0.01)
    save_lens(lens, tmp_path / "lens", formats=(fmt,))
    loaded = load_lens(tmp_path / "lens", model)
    assert loaded.config.sublayers and loaded.read_points() == lens.read_points()
    ids = sample_ids()
    torch.testing.assert_close(layer_logits(model, loaded, ids), layer_logits(model, lens, ids),
                               atol=0, rtol=0)


def test_training_fits_translators_at_the_attn_points():
    from lensbook.training.config import TrainConfig
    from lensbook.training.loop import train_lens

    model = make_model("gpt2")
    lens = TunedLens.from_model(model, sublayers=True)
    ids = torch.randint(1, 97, (32, 16), generator=torch.Generator().manual_seed(0))
    config = TrainConfig(steps=8, tokens_per_step=64, seq_len=16, batch_size=4,
                         optimizer="adam", lr=1e-2, progress=False)
    lens, history = train_lens(model, ids, config, lens)
    assert len(history.loss[0]) == 2 * model.config.num_hidden_layers
    attn_rows = [i for i, p in enumerate(lens.read_points()) if p.site == "attn"]
    for i in attn_rows:
        assert lens.translators[i].weight.abs().sum() > 0
        assert history.loss[-1][i] < history.loss[0][i]


@pytest.mark.parametrize("name", ["gpt2", "gemma2"])
def test_blockwise_objective_at_attn_points_equals_plain_autograd(name):
    from lensbook.training.objective import KLObjective

    model = make_model(name)
    lens = TunedLens.from_model(model, sublayers=True)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in lens.translators.parameters():
            p.normal_(0, 0.05)
    ids = sample_ids(batch=3, seq=9)
    hs = hidden_states(model, ids, points=lens.read_points())
    logp = torch.log_softmax(model(ids).logits.float(), -1)
    expected = torch.stack([
        (logp.exp() * (logp - torch.log_softmax(lens(read(hs, p), i).float(), -1))).sum(-1).mean()
        for i, p in enumerate(lens.read_points())])
    expected.sum().backward()
    want = [p.grad.clone() for p in lens.trainable_parameters()]
    lens.zero_grad()
    got = KLObjective(lens, chunk_mb=1e-3).accumulate(hs, scale=1 / ids.numel()) / ids.numel()
    torch.testing.assert_close(got, expected.detach(), rtol=1e-4, atol=1e-5)
    for g, w in zip((p.grad for p in lens.trainable_parameters()), want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)


def test_cli_trains_and_evaluates_a_sublayer_lens(tmp_path):
    import json

    from lensbook.cli import main
    from tests.test_cli import char_tokenizer

    model = make_model("llama")
    model.save_pretrained(tmp_path / "model")
    char_tokenizer().save_pretrained(tmp_path / "model")
    docs = [{"text": f"def f{i}(x):\n    return x * {i}\n"} for i in range(200)]
    (tmp_path / "docs.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    common = ["--model", str(tmp_path / "model"), "--data", str(tmp_path / "docs.jsonl")]
    assert main(["train", *common, "--sublayers", "--eval-split", "train", "--eval-tokens",
                 "128", "--steps", "2", "--tokens-per-step", "64", "--seq-len", "16",
                 "--no-progress", "--output", str(tmp_path / "lens")]) == 0
    assert json.loads((tmp_path / "lens" / "config.json").read_text())["sublayers"] is True
    assert main(["eval", *common, "--split", "train", "--max-tokens", "128",
                 "--lens", str(tmp_path / "lens"), "--output", str(tmp_path / "eval")]) == 0


def test_explorer_offers_the_sublayer_rows():
    from lensbook.widgets import explorer
    from tests.tiny_tokenizer import make_tokenizer

    model = make_model("gpt2")
    lenses = {"logit lens": LogitLens.from_model(model),
              "logit lens, sub-layers": LogitLens.from_model(model, sublayers=True)}
    view = explorer(model, make_tokenizer(), lenses, prompt="The cat sat")
    view.runner.lens.value = "logit lens, sub-layers"
    rows = [t.get_text() for t in view.figure.axes[0].texts if t.get_gid() == "layer"]
    assert rows[:2] == ["0", "0.attn"] and "2.attn" in rows and rows[-1] == "output"
