"""Lens files: reference layout, safetensors, the Hub, and every way a file can be wrong."""

import json
import os
import pickle
import shutil
import warnings

import pytest
import torch

import lensbook.core.files as artifacts
from lensbook import LensFileError, TunedLens, load_lens, load_published, save_lens
from lensbook.core.head import Unembed
from tests.tiny_models import make_model


@pytest.fixture
def saved(gpt2, tmp_path):
    lens = TunedLens.from_model(gpt2)
    save_lens(lens, tmp_path)
    return tmp_path


def test_reference_layout_keys_and_config(saved):
    config = json.loads((saved / "config.json").read_text())
    assert set(config) == {
        "base_model_name_or_path", "d_model", "num_hidden_layers", "bias",
        "base_model_revision", "unembed_hash", "lens_type", "unembed_sha256",
    }
    assert config["lens_type"] == "linear_tuned_lens"
    state = torch.load(saved / "params.pt", weights_only=True)
    assert set(state) == {f"{i}.{p}" for i in range(3) for p in ("weight", "bias")}
    assert state["0.weight"].shape == (32, 32) and state["0.bias"].shape == (32,)


def test_bias_false_works(gpt2, tmp_path):
    lens = TunedLens.from_model(gpt2, bias=False)
    save_lens(lens, tmp_path)
    loaded = load_lens(tmp_path, gpt2)
    assert set(loaded.state()) == {"0.weight", "1.weight", "2.weight"}
    assert json.loads((tmp_path / "config.json").read_text())["bias"] is False


def test_bias_only_lens_trains_only_biases(gpt2, tmp_path):
    lens = TunedLens.from_model(gpt2, bias_only=True)
    assert all(p.dim() == 1 for p in lens.trainable_parameters())
    assert len(lens.trainable_parameters()) == 3
    save_lens(lens, tmp_path)
    assert load_lens(tmp_path, gpt2).config.bias_only
    assert lens.label == "bias-only lens"


def test_hash_changes_when_any_weight_changes(gpt2):
    before = Unembed(gpt2).content_hash()
    with torch.no_grad():
        gpt2.lm_head.weight[40, 17] += 1e-3
    assert Unembed(gpt2).content_hash() != before


def test_hash_mismatch_warns(saved, gpt2):
    with torch.no_grad():
        gpt2.transformer.ln_f.weight[3] += 0.5
    with pytest.warns(UserWarning, match="unembedding differs"):
        load_lens(saved, gpt2)


def test_reference_hash_is_checked_when_no_sha256(saved, gpt2):
    config = json.loads((saved / "config.json").read_text())
    del config["unembed_sha256"]
    (saved / "config.json").write_text(json.dumps(config))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_lens(saved, gpt2)  # the reference hash matches: no warning
    with torch.no_grad():
        gpt2.lm_head.weight.mul_(3.0)
    with pytest.warns(UserWarning, match="unembedding differs"):
        load_lens(saved, gpt2)


def test_matching_hash_does_not_warn(saved, gpt2, recwarn):
    load_lens(saved, gpt2)
    assert not [w for w in recwarn if "differs" in str(w.message)]


def test_wrong_width_names_both_shapes(saved):
    wide = make_model("gpt2")
    wide.config.n_embd = 48
    with pytest.raises(ValueError, match=r"d_model=32, layers=3.*hidden_size=48"):
        load_lens(saved, wide)


def test_wrong_layer_count_names_both_shapes(saved):
    deeper = make_model("gpt2")
    deeper.config.n_layer = 5
    with pytest.raises(ValueError, match=r"layers=3.*num_hidden_layers=5"):
        load_lens(saved, deeper)


def test_truncated_params_pt_names_the_file(saved, gpt2):
    path = saved / "params.pt"
    os.remove(saved / "params.safetensors")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(LensFileError, match="params.pt"):
        load_lens(saved, gpt2)


def test_corrupt_safetensors_names_the_file(saved, gpt2):
    (saved / "params.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(LensFileError, match="params.safetensors"):
        load_lens(saved, gpt2)


def test_corrupt_config_names_the_file(saved, gpt2):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(LensFileError, match="config.json"):
        load_lens(saved, gpt2)


def test_missing_weights_are_an_error(saved, gpt2):
    os.remove(saved / "params.pt")
    os.remove(saved / "params.safetensors")
    with pytest.raises(LensFileError, match="no params.safetensors or params.pt"):
        load_lens(saved, gpt2)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-lens",))


# A hand-made pickle (protocol 4) makes torch warn that weights_only expects protocol 2: expected.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_arbitrary_pickle_is_refused_not_executed(saved, gpt2, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.remove(saved / "params.safetensors")
    with open(saved / "params.pt", "wb") as f:
        pickle.dump({"0.weight": _Evil()}, f)
    with pytest.raises(LensFileError, match="refusing to load lens weights from .*params.pt"):
        load_lens(saved, gpt2)
    assert not (tmp_path / "pwned-by-lens").exists()


def test_unknown_config_keys_are_ignored_with_a_warning(saved, gpt2):
    config = json.loads((saved / "config.json").read_text())
    config["future_field"] = 1
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="future_field"):
        load_lens(saved, gpt2)


def test_reference_spelling_unemebd_hash_is_read_and_checked(saved, gpt2):
    config = json.loads((saved / "config.json").read_text())
    del config["unembed_sha256"]
    config["unemebd_hash"] = config.pop("unembed_hash")  # as the released reference writes it
    (saved / "config.json").write_text(json.dumps(config))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_lens(saved, gpt2).config.unembed_hash == config["unemebd_hash"]
    with torch.no_grad():
        gpt2.lm_head.weight.mul_(3.0)
    with pytest.warns(UserWarning, match="unembedding differs"):
        load_lens(saved, gpt2)


def test_mismatched_weight_shapes_are_an_error(saved, gpt2):
    state = torch.load(saved / "params.pt", weights_only=True)
    state["1.weight"] = torch.zeros(32, 31)
    torch.save(state, saved / "params.pt")
    os.remove(saved / "params.safetensors")
    with pytest.raises(LensFileError, match="do not match"):
        load_lens(saved, gpt2)


def _hub_like_folder(lens, root, name):
    save_lens(lens, root / "lens" / name, formats=("pt",))
    return root


def test_published_lens_from_a_local_folder_with_hub_layout(gpt2, tmp_path):
    lens = TunedLens.from_model(gpt2)
    with torch.no_grad():
        lens.translators[1].bias.fill_(0.25)
    root = _hub_like_folder(lens, tmp_path, "tiny-gpt2")
    loaded = load_published(gpt2, repo_id=str(root))
    assert torch.equal(loaded.translators[1].bias, lens.translators[1].bias)


def test_published_lens_uses_hf_hub_download(gpt2, tmp_path, monkeypatch):
    lens = TunedLens.from_model(gpt2)
    root = _hub_like_folder(lens, tmp_path, "org/tiny-gpt2")
    calls = []

    def fake_download(repo_id, filename, repo_type=None, revision=None):
        calls.append((repo_id, filename, repo_type, revision))
        dest = tmp_path / "cache" / filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / filename, dest)
        return str(dest)

    monkeypatch.setattr(artifacts, "hf_hub_download", fake_download)
    load_published(gpt2, "org/tiny-gpt2")
    assert calls == [
        ("AlignmentResearch/tuned-lens", "lens/org/tiny-gpt2/config.json", "space", None),
        ("AlignmentResearch/tuned-lens", "lens/org/tiny-gpt2/params.pt", "space", None),
    ]
    monkeypatch.setenv("TUNED_LENS_REPO_ID", "me/lenses")
    monkeypatch.setenv("TUNED_LENS_REPO_TYPE", "model")
    calls.clear()
    load_published(gpt2, "org/tiny-gpt2")
    assert calls[0][:3] == ("me/lenses", "lens/org/tiny-gpt2/config.json", "model")


def test_lens_loaded_on_the_models_device(saved, gpt2):
    lens = load_lens(saved, gpt2)
    assert {p.device for p in lens.parameters()} == {gpt2.device}


def test_published_lens_of_the_embedded_model_is_the_shipped_one():
    from lensbook import load_model

    model, _ = load_model("lensbook-tiny")
    lens = load_published(model)
    assert lens.config.base_model_name_or_path == "lensbook-tiny"
    assert lens.config.training["tokens"] > 0
    assert any(torch.count_nonzero(t.weight) > 0 for t in lens.translators)
