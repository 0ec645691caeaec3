"""``python -m lensbook train/eval``: every option documented, files written, lens loadable."""

import json
import string
import subprocess
import sys
from dataclasses import fields

import pandas as pd
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from lensbook import load_model
from lensbook.cli import main
from lensbook.core.files import load_lens
from lensbook.training.config import TrainConfig, field_help
from tests.tiny_models import VOCAB, make_model


def help_text(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["train", "eval"])
def test_help_lists_the_options(command, capsys):
    text = help_text(command, capsys)
    assert "--model" in text and "--output" in text and "--data" in text


def test_train_has_an_option_for_every_config_field(capsys):
    text = help_text("train", capsys)
    for field in fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in text


def test_every_config_field_is_documented():
    helps = field_help()
    assert set(helps) == {field.name for field in fields(TrainConfig)}
    assert all(len(text) > 10 for text in helps.values())


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "lensbook", "train", "--help"],
                            capture_output=True, text=True, check=True)
    assert "--tokens-per-step" in result.stdout and "--bias-only" in result.stdout


def char_tokenizer():
    """One token per printable ASCII character; EOS = 0 (fits the tiny model's 97 ids)."""
    vocab = {"<eos>": 0, "<unk>": 1}
    vocab |= {c: i + 2 for i, c in enumerate(string.printable[:VOCAB - 2])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    model = make_model("gpt2")
    model.save_pretrained(root / "model")
    char_tokenizer().save_pretrained(root / "model")
    docs = [{"text": f"def f{i}(x):\n    return x * {i} + {i % 7}\n"} for i in range(300)]
    (root / "docs.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    return root


def test_train_then_eval_writes_lens_config_history_and_metrics(workspace, capsys):
    out = workspace / "lens"
    status = main([
        "train", "--model", str(workspace / "model"), "--data", str(workspace / "docs.jsonl"),
        "--eval-split", "train", "--eval-tokens", "256", "--steps", "4",
        "--tokens-per-step", "128", "--seq-len", "32", "--batch-size", "2",
        "--checkpoint-every", "2", "--no-progress", "--output", str(out),
    ])
    assert status == 0
    for name in ("config.json", "params.pt", "params.safetensors", "train_config.json",
                 "history.csv", "metrics.csv", "metrics.json", "checkpoints/last.pt"):
        assert (out / name).exists(), name
    record = json.loads((out / "train_config.json").read_text())
    assert record["config"]["steps"] == 4 and record["config"]["seq_len"] == 32
    assert len(pd.read_csv(out / "history.csv")) == 4 * 3
    model, _ = load_model(str(workspace / "model"))
    lens = load_lens(out, model)
    assert lens.config.training["tokens"] == 4 * 128
    status = main(["eval", "--model", str(workspace / "model"), "--lens", str(out),
                   "--data", str(workspace / "docs.jsonl"), "--split", "train",
                   "--max-tokens", "256", "--transfer", "--output", str(workspace / "eval")])
    assert status == 0
    metrics = pd.read_csv(workspace / "eval" / "metrics.csv")
    assert set(metrics.lens) == {"logit lens", "tuned lens", "output"}
    assert set(metrics.unit) == {"nats/token", "bits/byte", "fraction", "nats", "bits"}
    transfer = pd.read_csv(workspace / "eval" / "transfer.csv")
    assert len(transfer) == 2 * 2 * 3 * 3
    assert "tuned" in capsys.readouterr().out


def test_train_fails_early_when_the_data_is_too_small(workspace, capsys):
    from lensbook.training.loop import InsufficientDataError

    argv = ["train", "--model", str(workspace / "model"), "--data", str(workspace / "docs.jsonl"),
            "--preset", "quick", "--seq-len", "32", "--output", str(workspace / "big")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "lensbook: error: the data holds" in err and "need" in err and "Traceback" not in err
    assert not (workspace / "big" / "params.pt").exists()
    with pytest.raises(InsufficientDataError, match="need"):
        main(["--traceback", *argv])
