"""Bad input at every entry point: the exception type, the words of the message, nothing lost."""

import json
import os
import pickle
import subprocess
import sys
import warnings

import pytest
import torch
import transformers as tf

import lensbook
from lensbook import (
    LENS_TYPES,
    CheckpointError,
    InputError,
    LensbookError,
    LensFileError,
    LogitLens,
    NonFiniteModelError,
    TunedLens,
    UnsupportedModelError,
    evaluate_lenses,
    find_parts,
    layer_logits,
    load_lens,
    load_model,
    save_lens,
    trajectory,
)
from lensbook.cli import main
from lensbook.training.checkpoint import checkpoint_path
from lensbook.training.config import TrainConfig
from lensbook.training.loop import NonFiniteLossError, train_lens
from tests.test_cli import char_tokenizer
from tests.tiny_models import VOCAB, make_model
from tests.tiny_tokenizer import make_tokenizer

SEQ = 16


def ids_of(n_chunks=16, seq=SEQ):
    return torch.randint(1, VOCAB, (n_chunks, seq), generator=torch.Generator().manual_seed(0))


def small_config(**overrides):
    fields = dict(steps=2, tokens_per_step=4 * SEQ, seq_len=SEQ, batch_size=2, progress=False)
    return TrainConfig(**(fields | overrides))


def tiny_t5():
    config = tf.T5Config(vocab_size=VOCAB, d_model=32, d_ff=64, num_layers=2, num_heads=4,
                         d_kv=8, decoder_start_token_id=0)
    return tf.T5ForConditionalGeneration(config).eval()


def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- encoder-decoder models -------------------------------------------------------------


def test_every_from_model_refuses_an_encoder_decoder_model():
    t5 = tiny_t5()
    with pytest.raises(UnsupportedModelError, match="encoder-decoder model \\(t5\\).*decoder-only"):
        find_parts(t5)
    for name, cls in LENS_TYPES.items():
        with pytest.raises(UnsupportedModelError, match="encoder-decoder"):
            cls.from_model(t5)
        assert name


def test_load_model_refuses_a_t5_folder_in_one_short_message(tmp_path):
    tiny_t5().save_pretrained(tmp_path / "t5")
    with pytest.raises(UnsupportedModelError, match="t5.*encoder-decoder") as info:
        load_model(str(tmp_path / "t5"))
    assert len(str(info.value)) < 300 and str(tmp_path / "t5") in str(info.value)


def test_load_model_refuses_a_model_without_a_causal_lm_class(tmp_path):
    tf.ViTConfig(hidden_size=32, num_hidden_layers=2).save_pretrained(tmp_path / "vit")
    with pytest.raises(UnsupportedModelError, match="'vit' model.*no causal"):
        load_model(str(tmp_path / "vit"))


def test_a_model_and_tokenizer_pair_is_named():
    pair = (make_model("gpt2"), make_tokenizer())
    with pytest.raises(TypeError, match="pair: unpack it"):
        LogitLens.from_model(pair)


def test_load_model_refuses_an_unknown_dtype_and_a_missing_gpu():
    with pytest.raises(ValueError, match="unknown dtype 'float33'"):
        load_model("lensbook-tiny", dtype="float33")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU: use device='cpu'"):
            load_model("lensbook-tiny", device="cuda")


# --- token ids and prompts --------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt2_and_lens():
    model = make_model("gpt2")
    return model, LogitLens.from_model(model)


def test_layer_logits_refuses_empty_ids(gpt2_and_lens):
    model, lens = gpt2_and_lens
    with pytest.raises(InputError, match="holds no tokens"):
        layer_logits(model, lens, torch.zeros((1, 0), dtype=torch.long))


def test_layer_logits_refuses_ids_longer_than_the_context(gpt2_and_lens):
    model, lens = gpt2_and_lens
    with pytest.raises(InputError, match="65 tokens long.*at most 64.*shorten"):
        layer_logits(model, lens, torch.ones((1, 65), dtype=torch.long))


def test_layer_logits_refuses_ids_outside_the_vocabulary(gpt2_and_lens):
    model, lens = gpt2_and_lens
    with pytest.raises(InputError, match=f"token id {VOCAB} is outside.*another tokenizer"):
        layer_logits(model, lens, torch.tensor([[1, VOCAB]]))
    with pytest.raises(InputError, match="shape \\(batch, seq\\)"):
        layer_logits(model, lens, torch.tensor([1, 2]))


def test_a_lens_for_another_model_is_refused(gpt2_and_lens):
    model, _ = gpt2_and_lens
    small = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=VOCAB, n_embd=16, n_layer=2, n_head=2))
    other = LogitLens.from_model(small)
    with pytest.raises(InputError, match="hidden size 16, 2 layers.*has 32, 3.*build or load"):
        trajectory(model, make_tokenizer(), other, "The cat")
    with pytest.raises(TypeError, match="expected a lens"):
        layer_logits(model, {"logit lens": other}, torch.tensor([[1, 2]]))


def test_prompts_of_the_wrong_type_and_no_lenses(gpt2_and_lens):
    model, lens = gpt2_and_lens
    with pytest.raises(TypeError, match="string or a list of strings"):
        trajectory(model, make_tokenizer(), lens, 42)
    with pytest.raises(InputError, match="no lenses"):
        lensbook.trajectories_by_lens(model, make_tokenizer(), {}, ["The cat"])


def test_an_untokenisable_prompt_is_an_input_error(gpt2_and_lens):
    model, lens = gpt2_and_lens
    strict = strict_tokenizer()
    with pytest.raises(InputError, match="cannot encode the prompt 'héllo'"):
        trajectory(model, strict, lens, "héllo")


def strict_tokenizer():
    """A character tokenizer without an unknown token: characters outside it cannot be encoded."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz ")}
    tok = Tokenizer(models.WordLevel(vocab))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    return tf.PreTrainedTokenizerFast(tokenizer_object=tok)


# --- lens files -------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    model = make_model("gpt2")
    lens = TunedLens.from_model(model)
    with torch.no_grad():
        for translator in lens.translators:
            translator.bias.fill_(0.5)
    save_lens(lens, tmp_path / "lens")
    return model, tmp_path / "lens"


def test_a_config_value_of_the_wrong_type_names_the_key_and_the_file(saved):
    model, folder = saved
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"d_model": "32"}))
    with pytest.raises(LensFileError, match="config.json: d_model must be int, got '32' \\(str\\)"):
        load_lens(folder, model)
    (folder / "config.json").write_text(json.dumps(config | {"bias": "yes"}))
    with pytest.raises(LensFileError, match="bias must be bool"):
        load_lens(folder, model)
    (folder / "config.json").write_text(json.dumps(config | {"num_hidden_layers": True}))
    with pytest.raises(LensFileError, match="num_hidden_layers must be int, got True"):
        load_lens(folder, model)


def test_an_unknown_lens_type_names_the_file(saved):
    model, folder = saved
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"lens_type": "magic"}))
    with pytest.raises(LensFileError, match="config.json: unknown lens type 'magic'"):
        load_lens(folder, model)


def test_stale_weights_are_refused_not_loaded(saved):
    """The reference package re-saving a lens writes only params.pt: the old safetensors stay."""
    model, folder = saved
    zeroed = {k: torch.zeros_like(v) for k, v in load_lens(folder, model).state().items()}
    os.utime(folder / "params.safetensors", (1_000_000_000, 1_000_000_000))
    torch.save(zeroed, folder / "params.pt")
    before = files_of(folder)
    with pytest.raises(LensFileError, match="disagree \\(params.pt is the newer file\\).*stale"):
        load_lens(folder, model)
    assert files_of(folder) == before
    chosen = load_lens(folder, model, weights="pt")
    assert all(torch.count_nonzero(v) == 0 for v in chosen.state().values())
    old = load_lens(folder, model, weights="safetensors")
    assert torch.all(old.translators[0].bias == 0.5)


def test_a_truncated_safetensors_next_to_an_intact_pt_says_what_to_do(saved):
    model, folder = saved
    data = (folder / "params.safetensors").read_bytes()
    (folder / "params.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(LensFileError, match="params.safetensors.*also holds params.pt.*"
                                            "weights='pt'"):
        load_lens(folder, model)
    assert torch.all(load_lens(folder, model, weights="pt").translators[2].bias == 0.5)


def test_saving_one_format_never_leaves_the_other_stale(saved):
    model, folder = saved
    before = files_of(folder)
    with pytest.raises(LensFileError, match="params.safetensors would be left holding other"):
        save_lens(TunedLens.from_model(model), folder, formats=("pt",))
    assert files_of(folder) == before
    with pytest.raises(ValueError, match="unknown lens file formats \\['safetensor'\\]"):
        save_lens(TunedLens.from_model(model), folder, formats=("safetensor",))
    with pytest.raises(ValueError, match="logit lens has no saved form"):
        save_lens(LogitLens.from_model(model), folder)
    assert files_of(folder) == before


def test_the_hash_warning_names_both_models(saved):
    model, folder = saved
    neo = make_model("gpt2", seed=5)
    neo.config.name_or_path = "tiny-gpt2-neo"
    with pytest.warns(UserWarning, match="trained for tiny-gpt2, whose unembedding differs "
                                         "from that of tiny-gpt2-neo"):
        load_lens(folder, neo)


def test_the_hash_warning_names_the_embedded_models():
    neo, _ = load_model("lensbook-nano-neo")
    folder = lensbook.embedded.families.EMBEDDED_MODELS["lensbook-nano"] / "lens"
    with pytest.warns(UserWarning, match="for lensbook-nano, whose .* of lensbook-nano-neo"):
        load_lens(folder, neo)


def test_nan_lens_weights_are_refused(saved):
    model, folder = saved
    lens = load_lens(folder, model)
    with torch.no_grad():
        lens.translators[2].bias[0] = float("nan")
    save_lens(lens, folder)
    with pytest.raises(LensFileError, match="params.pt hold NaN .*'2.bias'.*retrain") as info:
        load_lens(folder, model)
    assert "also holds" not in str(info.value)  # both files are bad: no advice to load one


def test_a_lens_missing_from_the_hub_is_named(monkeypatch):
    from huggingface_hub.errors import EntryNotFoundError

    import lensbook.core.files as files

    def missing(repo_id, filename, **kwargs):
        raise EntryNotFoundError(f"404: {filename}")

    monkeypatch.setattr(files, "hf_hub_download", missing)
    with pytest.raises(LensFileError, match="no published lens lens/org/nope/ in the space "
                                            "AlignmentResearch/tuned-lens.*train_lens"):
        lensbook.load_published(make_model("gpt2"), "org/nope")


def test_a_missing_lens_folder_is_named(tmp_path):
    with pytest.raises(LensFileError, match="lens folder not found: .*nowhere"):
        load_lens(tmp_path / "nowhere", make_model("gpt2"))


# --- training checkpoints ---------------------------------------------------------------


def test_resume_from_a_truncated_checkpoint_names_the_file_and_keeps_it(tmp_path):
    model, ids = make_model("gpt2"), ids_of()
    train_lens(model, ids, small_config(checkpoint_dir=str(tmp_path)))
    path = checkpoint_path(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="last.pt: the file is truncated or corrupt.*"
                                              "move it away"):
        train_lens(model, ids, small_config(checkpoint_dir=str(tmp_path), resume=True))
    assert path.read_bytes() == before


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-checkpoint",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_an_unsafe_checkpoint_is_refused_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = checkpoint_path(tmp_path / "run")
    path.parent.mkdir()
    path.write_bytes(pickle.dumps({"step": _Evil()}))
    with pytest.raises(CheckpointError, match="refusing to resume from .*last.pt.*arbitrary code"):
        train_lens(make_model("gpt2"), ids_of(),
                   small_config(checkpoint_dir=str(tmp_path / "run"), resume=True))
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    torch.save({"0.weight": torch.zeros(2)}, checkpoint_path(tmp_path))
    with pytest.raises(CheckpointError, match="not a lensbook training checkpoint \\(no step"):
        train_lens(make_model("gpt2"), ids_of(),
                   small_config(checkpoint_dir=str(tmp_path), resume=True))


def test_starting_over_a_checkpoint_warns(tmp_path):
    model, ids = make_model("gpt2"), ids_of()
    train_lens(model, ids, small_config(checkpoint_dir=str(tmp_path)))
    with pytest.warns(UserWarning, match="last.pt holds an earlier run's checkpoint.*resume=True"):
        train_lens(model, ids, small_config(checkpoint_dir=str(tmp_path)))


def test_nan_before_the_first_checkpoint_names_no_missing_file(tmp_path):
    model = make_model("gpt2")
    lens = TunedLens.from_model(model)
    with torch.no_grad():
        lens.translators[1].weight.fill_(float("nan"))
    config = small_config(checkpoint_dir=str(tmp_path), checkpoint_every=10)
    with pytest.raises(NonFiniteLossError, match="no checkpoint was written yet") as info:
        train_lens(model, ids_of(), config, lens=lens)
    assert "last good checkpoint" not in str(info.value)
    assert not checkpoint_path(tmp_path).exists()


def test_training_data_of_the_wrong_type_or_vocabulary():
    model = make_model("gpt2")
    with pytest.raises(TypeError, match="data must be TokenChunks.*load_chunks"):
        train_lens(model, ids_of().tolist(), small_config())
    with pytest.raises(InputError, match=r"token id \d+ is outside .* vocabulary \(0..96\)"):
        train_lens(model, ids_of() + VOCAB + 2, small_config())


def test_the_load_model_pair_is_named_by_trajectory():
    pair = (make_model("gpt2"), make_tokenizer())
    with pytest.raises(TypeError, match="pair: unpack it"):
        trajectory(pair, make_tokenizer(), LogitLens.from_model(pair[0]), "The cat")


def test_a_logit_lens_has_nothing_to_train():
    model = make_model("gpt2")
    with pytest.raises(InputError, match="logit lens has no trainable parameters"):
        train_lens(model, ids_of(), small_config(), lens=LogitLens.from_model(model))


# --- a model with NaN weights -----------------------------------------------------------


@pytest.fixture(scope="module")
def broken_model():
    model = make_model("gpt2")
    with torch.no_grad():
        model.transformer.h[1].mlp.c_fc.weight[0, 0] = float("nan")
    return model


def test_nan_weights_stop_trajectories_naming_the_parameter(broken_model):
    lens = LogitLens.from_model(broken_model)
    with pytest.raises(NonFiniteModelError, match="logits are NaN.*transformer.h.1.mlp.c_fc"):
        trajectory(broken_model, make_tokenizer(), lens, "The cat sat")


def test_nan_weights_stop_evaluation_and_training(broken_model):
    lens = LogitLens.from_model(broken_model)
    with pytest.raises(NonFiniteModelError, match="hidden states are NaN.*h.1.mlp.c_fc"):
        evaluate_lenses(broken_model, {"logit lens": lens}, ids_of(4))
    with pytest.raises(NonFiniteLossError, match="parameter transformer.h.1.mlp.c_fc.weight"):
        train_lens(broken_model, ids_of(), small_config())


def test_every_error_is_a_lensbook_error_and_its_builtin():
    assert issubclass(LensFileError, ValueError) and issubclass(CheckpointError, LensbookError)
    assert issubclass(NonFiniteModelError, FloatingPointError)
    assert issubclass(NonFiniteLossError, LensbookError)


# --- the command line -------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-errors")
    make_model("gpt2").save_pretrained(root / "model")
    char_tokenizer().save_pretrained(root / "model")
    (root / "docs.jsonl").write_text(json.dumps({"text": "def f(x):\n    return x\n"}))
    return root


def one_error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("lensbook: error: ")]
    assert "Traceback" not in err
    assert len(lines) == 1, err  # other lines are progress bars of transformers
    return lines[0]


def test_cli_too_little_data_is_one_line(workspace, capsys):
    status = main(["train", "--model", str(workspace / "model"), "--data",
                   str(workspace / "docs.jsonl"), "--preset", "quick", "--seq-len", "8",
                   "--output", str(workspace / "out")])
    assert status == 1
    assert "give more data" in one_error_line(capsys)
    assert not (workspace / "out" / "params.pt").exists()


def test_cli_encoder_decoder_model_is_one_line(workspace, capsys):
    tiny_t5().save_pretrained(workspace / "t5")
    status = main(["eval", "--model", str(workspace / "t5"), "--output", str(workspace / "e")])
    assert status == 1 and "encoder-decoder" in one_error_line(capsys)


def test_cli_broken_lens_file_is_one_line(workspace, capsys):
    lens_dir = workspace / "broken-lens"
    lens_dir.mkdir()
    (lens_dir / "config.json").write_text("{not json")
    status = main(["eval", "--model", str(workspace / "model"), "--lens", str(lens_dir),
                   "--data", str(workspace / "docs.jsonl"), "--output", str(workspace / "e")])
    assert status == 1 and "not valid JSON" in one_error_line(capsys)


def test_cli_traceback_option_raises(workspace):
    with pytest.raises(UnsupportedModelError):
        main(["--traceback", "eval", "--model", str(workspace / "t5"),
              "--output", str(workspace / "e")])


def test_python_m_lensbook_prints_one_line_and_exits_non_zero(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "lensbook", "eval", "--model", str(tmp_path / "no-such-model"),
         "--output", str(tmp_path / "out")], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("lensbook: error:")]
    assert len(lines) == 1 and "no-such-model" in lines[0]


def test_nothing_warns_when_all_is_well(saved):
    model, folder = saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_lens(folder, model)
